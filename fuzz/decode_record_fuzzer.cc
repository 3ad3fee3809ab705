// Fuzzes DecodeRecord, the decoder of every record a consumer reads: JSON
// envelope (with CloudEvents binary headers, or bare as a Go producer writes
// it), CloudEvents structured and CloudEvents binary. The input is split into
// headers, key and value (fuzz_support.h); the whole input is also tried as
// the value alone under each mode's headers, so deep nesting up to -max_len
// reaches the JSON scanners directly.
//
// Properties: never a crash; a rejection is kInvalidArgument; a decoded
// envelope has a non-empty id and type (a record without is dead-lettered,
// never skipped); its content type is JSON only with a payload that is valid
// JSON within herald::kMaxJsonDepth (data_base64 included); its extensions
// have CloudEvents attribute names, each once, none that herald keeps in a
// field or header of its own (wire.h).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "fuzz_support.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"

namespace herald::fuzz {
namespace {

bool IsJsonContentType(std::string_view ct) {
  return ct.empty() || absl::StartsWithIgnoreCase(ToAbsl(ct), "application/json") ||
         absl::EndsWithIgnoreCase(ToAbsl(ct), "+json");
}

std::string Show(const Envelope& e) {
  std::ostringstream os;
  os << e;
  return os.str();
}

void Check(std::string_view key, std::string_view value, const Headers& headers) {
  absl::StatusOr<Envelope> e = DecodeRecord("fuzz-topic", key, value, headers);
  CheckRejection(e.status(), "DecodeRecord failed with a code other than kInvalidArgument");
  if (!e.ok()) return;
  if (e->id.empty() || e->type.empty()) Fail("DecodeRecord accepted an empty id or type", Show(*e));
  for (size_t i = 0; i < e->extensions.size(); ++i) {
    const std::string& name = e->extensions[i].first;
    bool valid = !name.empty() && std::all_of(name.begin(), name.end(),
                                              [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
    if (!valid) Fail("DecodeRecord kept an extension whose name is no CloudEvents attribute name", name);
    for (std::string_view mapped : {"id", "type", "source", "specversion", "time", "subject", "dataschema",
                                    "datacontenttype", "data", "schemaversion", "traceparent", "tracestate"}) {
      if (name == mapped) Fail("DecodeRecord kept a mapped attribute as an extension", name);
    }
    for (size_t j = 0; j < i; ++j) {
      if (e->extensions[j].first == name) Fail("DecodeRecord kept an extension twice", name);
    }
    if (name == "partitionkey" && (e->key.empty() || e->extensions[i].second == e->key)) {
      Fail("DecodeRecord kept partitionkey as an extension although it is the key", Show(*e));
    }
  }
  if (IsJsonContentType(e->content_type)) {
    if (absl::Status valid = json::Validate(e->payload); !valid.ok()) {
      Fail("DecodeRecord accepted a JSON payload that is not valid JSON within the limits",
           std::string(valid.message()));
    }
  }
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace herald;
  using namespace herald::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  RecordInput record = SplitRecord(input);
  Check(record.key, record.value, record.headers);
  // The whole input as a value: bare (Go producer), structured, binary.
  Check("", input, {});
  Check("", input, {{"content-type", "application/cloudevents+json"}});
  Check("", input, {{"ce_specversion", "1.0"}, {"ce_id", "1"}, {"ce_type", "x"}});
  return 0;
}
