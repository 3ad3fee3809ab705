// Fuzzes the outbox headers column codec (DecodeOutboxHeaders), which reads
// a column any writer of the outbox table may fill: application headers and
// the CloudEvents subject, dataschema and extensions (ce_ entries).
//
// Properties: never a crash; a rejection is kInvalidArgument and leaves the
// envelope unchanged; what decodes encodes to a column that decodes to the
// same headers, subject, dataschema and extensions.
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
  Envelope envelope;
  envelope.id = "fuzz";
  envelope.type = "fuzz.tested";
  const Envelope before = envelope;
  absl::Status decoded = DecodeOutboxHeaders(input, envelope);
  CheckRejection(decoded, "DecodeOutboxHeaders failed with a code other than kInvalidArgument");
  if (!decoded.ok()) {
    if (!(envelope == before)) Fail("a rejected headers column changed the envelope", std::string(input));
    return 0;
  }
  absl::StatusOr<std::string> column = EncodeOutboxHeaders(envelope);
  if (!column.ok()) Fail("a decoded headers column does not encode", std::string(column.status().ToString()));
  Envelope again = before;
  absl::Status redecoded = DecodeOutboxHeaders(*column, again);
  if (!redecoded.ok()) Fail("an encoded headers column does not decode", std::string(redecoded.ToString()));
  if (!(again == envelope)) Fail("headers column round trip changed the envelope", *column);
  return 0;
}
