// Fuzzes the wire round trip: a record that DecodeRecord accepts (never one
// without an id or a type) must encode in every WireMode, and decoding that
// encoding must give the same envelope. The input is split into headers, key
// and value as for decode_record_fuzzer.
//
// Every CloudEvents attribute must come back in every mode: subject,
// dataschema, the extensions in order, the key (also when it came from
// partitionkey) and the traceparent/tracestate headers (also when they came
// from the tracing extension); a binary payload in structured mode comes
// back byte for byte through data_base64.
//
// What a mode cannot carry is normalized before comparing, as documented in
// herald/core/wire.h: an empty source goes out as "herald"; the JSON envelope
// has no content type field, so there a JSON payload comes back as
// application/json, and a non-JSON payload, or a JSON string payload, comes
// back as text/plain holding the string's text. A JSON payload embedded in
// the JSON envelope or a structured event loses the white space around it.
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

// What `e` must look like after a trip through `mode`.
Envelope Expected(const Envelope& e, WireMode mode) {
  Envelope want = e;
  if (want.source.empty()) want.source = "herald";
  if (mode == WireMode::kJsonEnvelope) {
    rapidjson::Document d;
    bool json = IsJsonContentType(e.content_type);
    if (json && json::Parse(e.payload, d).ok() && d.IsString()) {
      want.payload.assign(d.GetString(), d.GetStringLength());
      json = false;
    }
    want.content_type = json ? "application/json" : "text/plain";
  }
  if (mode != WireMode::kBinary && IsJsonContentType(want.content_type)) {
    want.payload = std::string(json::TrimWhitespace(want.payload));
  }
  return want;
}

std::string Show(const Envelope& e) {
  std::ostringstream os;
  os << e;
  return os.str();
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace herald;
  using namespace herald::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  RecordInput record = SplitRecord(input);
  absl::StatusOr<Envelope> first = DecodeRecord("fuzz-topic", record.key, record.value, record.headers);
  CheckRejection(first.status(), "DecodeRecord failed with a code other than kInvalidArgument");
  if (!first.ok()) return 0;
  if (first->id.empty() || first->type.empty()) Fail("DecodeRecord accepted an empty id or type", Show(*first));
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
    const std::string name = StrCat("mode ", static_cast<int>(mode), "\n", Show(*first));
    absl::StatusOr<Record> encoded = EncodeRecord(*first, mode);
    if (!encoded.ok())
      Fail("EncodeRecord rejects an envelope DecodeRecord accepted", name + "\n" + encoded.status().ToString());
    absl::StatusOr<Envelope> second = DecodeRecord("fuzz-topic", encoded->key, encoded->value, encoded->headers);
    if (!second.ok()) {
      Fail("DecodeRecord rejects what EncodeRecord wrote",
           name + "\n" + encoded->value + "\n" + second.status().ToString());
    }
    Envelope want = Expected(*first, mode);
    if (*second != want)
      Fail("decode(encode(decode(x))) != decode(x)", name + "\ngot  " + Show(*second) + "\nwant " + Show(want));
  }
  return 0;
}
