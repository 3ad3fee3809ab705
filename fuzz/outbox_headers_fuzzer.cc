// Fuzzes the outbox headers column codec (DecodeOutboxHeaders), which reads
// a column any writer of the outbox table may fill.
//
// Properties: never a crash; a rejection is kInvalidArgument; what decodes
// encodes to a column that decodes to the same headers.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include "fuzz_support.h"
#include "herald/core/outbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace herald;
  using namespace herald::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Headers> headers = DecodeOutboxHeaders(input);
  CheckRejection(headers.status(), "DecodeOutboxHeaders failed with a code other than kInvalidArgument");
  if (!headers.ok()) return 0;
  const std::string column = EncodeOutboxHeaders(*headers);
  absl::StatusOr<Headers> again = DecodeOutboxHeaders(column);
  if (!again.ok()) Fail("an encoded headers column does not decode", std::string(again.status().ToString()));
  if (*again != *headers) Fail("headers column round trip changed the headers", column);
  return 0;
}
