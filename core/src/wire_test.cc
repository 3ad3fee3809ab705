#include "herald/core/wire.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/dispatcher.h"
#include "herald/core/json.h"
#include "herald/core/transport.h"
#include "herald/testing/mocks.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Envelope Sample() {
  Envelope e;
  e.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77";
  e.type = "customer.created";
  e.topic = "customer-events";
  e.key = "cust-42";
  e.source = "customer-service";
  e.time = absl::FromUnixMillis(1764226889123);
  e.headers = {{"correlation-id", "req-7"}, {"traceparent", "00-abc-def-01"}};
  e.payload = R"({"customer_id":"cust-42","details":"new"})";
  return e;
}

TEST(EncodeRecord, DefaultModeIsTheGoJsonEnvelopePlusCloudEventsHeaders) {
  absl::StatusOr<Record> r = EncodeRecord(Sample());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->key, "cust-42");
  EXPECT_EQ(r->value, R"({"id":"0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77","type":"customer.created",)"
                      R"("timestamp":"2025-11-27T07:01:29.123Z","payload":{"customer_id":"cust-42","details":"new"}})");
  EXPECT_THAT(r->headers,
              ElementsAre(Pair("ce_specversion", "1.0"), Pair("ce_id", "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77"),
                          Pair("ce_source", "customer-service"), Pair("ce_type", "customer.created"),
                          Pair("ce_time", "2025-11-27T07:01:29.123Z"), Pair("content-type", "application/json"),
                          Pair("ce_partitionkey", "cust-42"), Pair("ce_traceparent", "00-abc-def-01"),
                          Pair("correlation-id", "req-7"), Pair("traceparent", "00-abc-def-01")));
  EXPECT_THAT(EncodeJsonEnvelope(Sample()), IsOkAndHolds(r->value));
}

TEST(EncodeRecord, ReservedApplicationHeadersAreDroppedAndSchemaVersionAdded) {
  Envelope e = Sample();
  e.source.clear();
  e.schema_version = 3;
  e.headers = {{"a", "1"}, {"ce_id", "spoofed"}, {"Content-Type", "text/evil"}, {"CE_TYPE", "x"}, {"b", "2"}};
  absl::StatusOr<Record> r = EncodeRecord(e);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->headers, ElementsAre(Pair("ce_specversion", "1.0"), Pair("ce_id", e.id), Pair("ce_source", "herald"),
                                      Pair("ce_type", "customer.created"), Pair("ce_time", ::testing::_),
                                      Pair("content-type", "application/json"), Pair("ce_schemaversion", "3"),
                                      Pair("ce_partitionkey", "cust-42"), Pair("a", "1"), Pair("b", "2")));
}

TEST(EncodeRecord, RejectsWhatCannotGoOnTheWire) {
  Envelope no_id = Sample();
  no_id.id.clear();
  EXPECT_THAT(EncodeRecord(no_id), StatusIs(absl::StatusCode::kInvalidArgument));
  Envelope no_type = Sample();
  no_type.type.clear();
  EXPECT_THAT(EncodeRecord(no_type), StatusIs(absl::StatusCode::kInvalidArgument));
  Envelope not_json = Sample();
  not_json.payload = "hello";
  EXPECT_THAT(EncodeRecord(not_json), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("content type")));
  EXPECT_THAT(EncodeRecord(not_json, WireMode::kCloudEventsStructured), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeRecord(not_json, WireMode::kBinary), IsOk());  // binary does not embed it
  Envelope trailing = Sample();
  trailing.payload = R"({"a":1} {"b":2})";
  EXPECT_THAT(EncodeRecord(trailing), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WireRoundTrip, EveryModeGivesBackTheEnvelope) {
  Envelope e = Sample();
  e.schema_version = 2;
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
    absl::StatusOr<Record> r = EncodeRecord(e, mode);
    ASSERT_THAT(r, IsOk()) << static_cast<int>(mode);
    absl::StatusOr<Envelope> back = DecodeRecord(e.topic, r->key, r->value, r->headers);
    ASSERT_THAT(back, IsOk()) << static_cast<int>(mode);
    EXPECT_EQ(*back, e) << static_cast<int>(mode) << "\n" << *back << "\n" << e;
  }
}

TEST(WireRoundTrip, StructuredModeHasCloudEventJsonAndNoCeHeaders) {
  absl::StatusOr<Record> r = EncodeRecord(Sample(), WireMode::kCloudEventsStructured);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->headers, ElementsAre(Pair("content-type", "application/cloudevents+json"),
                                      Pair("correlation-id", "req-7"), Pair("traceparent", "00-abc-def-01")));
  EXPECT_THAT(r->value, HasSubstr(R"("specversion":"1.0")"));
  EXPECT_THAT(r->value, HasSubstr(R"("data":{"customer_id":"cust-42","details":"new"})"));
}

TEST(WireRoundTrip, BinaryModeCarriesNonJsonPayloads) {
  Envelope e = Sample();
  e.content_type = "application/octet-stream";
  e.payload = std::string("\x00\x01\xff binary", 10);
  absl::StatusOr<Record> r = EncodeRecord(e, WireMode::kBinary);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->value, e.payload);
  EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e));
}

TEST(WireRoundTrip, NonJsonPayloadInJsonEnvelopeTravelsAsString) {
  Envelope e = Sample();
  e.content_type = "text/plain";
  e.payload = "plain \"text\"";
  absl::StatusOr<Record> r = EncodeRecord(e);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->value, HasSubstr(R"("payload":"plain \"text\"")"));
  absl::StatusOr<Envelope> back = DecodeRecord(e.topic, r->key, r->value, r->headers);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->payload, e.payload);
  EXPECT_EQ(back->content_type, "text/plain");
}

TEST(DecodeRecord, BareGoEnvelopeWithoutHeaders) {
  std::string value = R"({"id":"abc-1","type":"customer.updated","timestamp":"2025-11-27T08:01:29.5+01:00",)"
                      R"("payload":{"customer_id":"c1","details":"x"}})";
  absl::StatusOr<Envelope> e = DecodeRecord("customer-events", "c1", value, {});
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->id, "abc-1");
  EXPECT_EQ(e->type, "customer.updated");
  EXPECT_EQ(e->topic, "customer-events");
  EXPECT_EQ(e->key, "c1");
  EXPECT_EQ(e->time, absl::FromUnixMillis(1764226889500));
  EXPECT_EQ(e->payload, R"({"customer_id":"c1","details":"x"})");
  EXPECT_EQ(e->schema_version, 1);
  EXPECT_EQ(e->content_type, "application/json");
  EXPECT_TRUE(e->headers.empty());
}

TEST(DecodeRecord, GoEnvelopeWithZuluNanosecondsAndNoTimestamp) {
  absl::StatusOr<Envelope> z =
      DecodeRecord("t", "", R"({"id":"1","type":"x","timestamp":"2025-11-27T07:01:29.123456789Z","payload":{}})", {});
  ASSERT_THAT(z, IsOk());
  EXPECT_EQ(z->time, absl::FromUnixNanos(1764226889123456789));
  absl::StatusOr<Envelope> none = DecodeRecord("t", "", R"({"id":"1","type":"x","payload":[1]})", {});
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(none->payload, "[1]");
}

TEST(DecodeRecord, MalformedInputsAreInvalidArgument) {
  const Headers none;
  EXPECT_THAT(DecodeRecord("t", "", "not json", none), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t")));
  EXPECT_THAT(DecodeRecord("t", "", "", none), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeRecord("t", "", R"([{"id":"1","type":"x","payload":{}}])", none),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeRecord("t", "", R"({"type":"x","payload":{}})", none),
              StatusIs(absl::StatusCode::kInvalidArgument));  // missing id
  EXPECT_THAT(DecodeRecord("t", "", R"({"id":7,"type":"x","payload":{}})", none),
              StatusIs(absl::StatusCode::kInvalidArgument));  // id not a string
  EXPECT_THAT(DecodeRecord("t", "", R"({"id":"1","type":"x","timestamp":"yesterday","payload":{}})", none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RFC 3339")));
  EXPECT_THAT(DecodeRecord("t", "", R"({"id":"1","type":"x","timestamp":12,"payload":{}})", none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timestamp")));
}

TEST(DecodeRecord, BadCloudEventsHeadersAreInvalidArgument) {
  absl::StatusOr<Record> r = EncodeRecord(Sample());
  ASSERT_THAT(r, IsOk());
  for (const char* bad : {"zero", "0", "-1", "", "2x"}) {
    Headers h = r->headers;
    h.emplace_back("ce_schemaversion", bad);
    EXPECT_THAT(DecodeRecord("t", "", r->value, h),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ce_schemaversion")))
        << bad;
  }
  Headers binary = {{"ce_id", "1"}, {"ce_type", "x"}, {"ce_time", "not a time"}};
  EXPECT_THAT(DecodeRecord("t", "", "{}", binary), StatusIs(absl::StatusCode::kInvalidArgument));
  Headers structured = {{"content-type", "application/cloudevents+json"}};
  EXPECT_THAT(DecodeRecord("t", "", R"({"specversion":"1.0","type":"x"})", structured),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id")));
  EXPECT_THAT(DecodeRecord("t", "", "[]", structured), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeRecord("t", "", "{", structured), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DecodeRecord, StructuredModeIsDetectedWithoutHeaders) {
  absl::StatusOr<Record> r = EncodeRecord(Sample(), WireMode::kCloudEventsStructured);
  ASSERT_THAT(r, IsOk());
  absl::StatusOr<Envelope> e = DecodeRecord("customer-events", "cust-42", r->value, {});
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->id, Sample().id);
  EXPECT_EQ(e->payload, Sample().payload);
}

TEST(DecodeRecord, EveryTruncationOfAValidValueIsAnError) {
  absl::StatusOr<Record> r = EncodeRecord(Sample());
  ASSERT_THAT(r, IsOk());
  for (size_t n = 0; n < r->value.size(); ++n) {
    absl::StatusOr<Envelope> e = DecodeRecord("t", "", std::string_view(r->value).substr(0, n), {});
    EXPECT_THAT(e, StatusIs(absl::StatusCode::kInvalidArgument)) << n;
  }
}

// Random and mutated records must never crash and always give OK or
// kInvalidArgument.
TEST(DecodeRecord, FuzzedInputsNeverCrash) {
  std::mt19937_64 rng(20261127);
  std::vector<Record> seeds;
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
    absl::StatusOr<Record> r = EncodeRecord(Sample(), mode);
    ASSERT_THAT(r, IsOk());
    seeds.push_back(*r);
  }
  // From the array, not a const char*, so the bytes after the NUL are in.
  static constexpr char kAlphabet[] = "{}[]\":,0123456789.-+eEZTtrufalsn \\u\x00\xff\xc3idtypepayloadtimestamp";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  auto random_bytes = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      s.push_back(rng() % 2 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()]);
    }
    return s;
  };
  int ok = 0;
  for (int i = 0; i < 10000; ++i) {
    Record r;
    if (i % 3 == 0) {
      r.value = random_bytes(rng() % 64);
      if (rng() % 2) r.headers = {{"ce_id", random_bytes(4)}, {"ce_type", "x"}};
      if (rng() % 4 == 0) r.headers.emplace_back("content-type", "application/cloudevents+json");
      if (rng() % 4 == 0) r.headers.emplace_back("ce_time", random_bytes(8));
    } else {
      r = seeds[rng() % seeds.size()];
      int mutations = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < mutations && !r.value.empty(); ++m) {
        size_t pos = rng() % r.value.size();
        switch (rng() % 4) {
          case 0:
            r.value[pos] = static_cast<char>(rng() % 256);
            break;
          case 1:
            r.value.erase(pos, 1 + rng() % 8);
            break;
          case 2:
            r.value.insert(pos, random_bytes(1 + rng() % 4));
            break;
          case 3:
            r.value.resize(pos);
            break;
        }
      }
      if (rng() % 5 == 0 && !r.headers.empty()) r.headers[rng() % r.headers.size()].second = random_bytes(6);
    }
    absl::StatusOr<Envelope> e = DecodeRecord("fuzz", "k", r.value, r.headers);
    if (e.ok()) {
      ++ok;
    } else {
      ASSERT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << e.status();
    }
  }
  EXPECT_GT(ok, 0);  // some mutations stay valid (e.g. in payload strings)
}

// A consumer decodes every record into the same Envelope (DecodeRecordInto):
// each result must be exactly DecodeRecord's, status and message included,
// whatever the previous record left in it: attributes, extensions, headers,
// a text payload, an error half way.
TEST(DecodeRecordInto, ReusedEnvelopeGivesExactlyDecodeRecordsResult) {
  std::mt19937_64 rng(20261201);
  Envelope rich = Sample();
  rich.subject = "cust-42/address";
  rich.dataschema = "https://schemas.example/customer/1";
  rich.extensions = {{"tenant", "acme"}, {"partitionkey", "other-key"}};
  rich.schema_version = 3;
  Envelope text = Sample();
  text.content_type = "text/plain";
  text.payload = "just text";
  std::vector<Record> seeds;
  for (const Envelope& e : {Sample(), rich, text}) {
    for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
      absl::StatusOr<Record> r = EncodeRecord(e, mode);
      ASSERT_THAT(r, IsOk());
      seeds.push_back(*r);
    }
  }
  Record go;  // a Go service's bare envelope: no headers, repeated members
  go.value = R"({"id":"a","type":"t","id":"b","timestamp":"2025-11-27T08:01:29.5+01:00","payload":"s","payload":[1]})";
  seeds.push_back(go);
  Record upper = seeds[0];  // ce_ names in any case, and a long extension name
  for (auto& [name, value] : upper.headers) name = absl::AsciiStrToUpper(name);
  upper.headers.emplace_back("ce_averyveryverylongextensionnamethatislongerthan32", "v");
  seeds.push_back(upper);
  Envelope reused;
  int ok = 0;
  for (int i = 0; i < 3000; ++i) {
    Record r = seeds[rng() % seeds.size()];
    if (i % 2 == 1 && !r.value.empty()) {  // a mutation, often invalid
      size_t pos = rng() % r.value.size();
      if (rng() % 2) {
        r.value[pos] = "{}[]\":,0x\\"[rng() % 11];
      } else {
        r.value.resize(pos);
      }
    }
    absl::StatusOr<Envelope> want = DecodeRecord("t", r.key, r.value, r.headers);
    absl::Status got = DecodeRecordInto("t", r.key, r.value, r.headers, reused);
    ASSERT_EQ(got, want.status()) << r.value;
    if (want.ok()) {
      ++ok;
      ASSERT_EQ(reused, *want) << r.value;
    }
  }
  EXPECT_GT(ok, 1000);
}

// A binary record with a JSON payload that starts with a newline encoded the
// newline into the JSON envelope, where the reader cannot see it: the payload
// came back one byte shorter. White space around a JSON value is not written.
TEST(WireFuzzFindings, WhiteSpaceAroundAJsonPayloadIsNotEmbedded) {
  const Headers binary = {{"ce_id", "7"}, {"ce_type", "x"}};
  absl::StatusOr<Envelope> e = DecodeRecord("t", "", "\n \t{\"a\": 1}\r\n ", binary);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->payload, "\n \t{\"a\": 1}\r\n ");  // binary keeps the bytes
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured}) {
    absl::StatusOr<Record> r = EncodeRecord(*e, mode);
    ASSERT_THAT(r, IsOk()) << static_cast<int>(mode);
    EXPECT_THAT(r->value, HasSubstr(":{\"a\": 1}}")) << r->value;
    absl::StatusOr<Envelope> back = DecodeRecord("t", r->key, r->value, r->headers);
    ASSERT_THAT(back, IsOk()) << static_cast<int>(mode);
    EXPECT_EQ(back->payload, "{\"a\": 1}") << static_cast<int>(mode);
  }
  EXPECT_EQ(json::TrimWhitespace(" \t\r\n"), "");
  EXPECT_EQ(json::TrimWhitespace("\v1\f"), "\v1\f");  // not JSON white space
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// Payload bytes are passed on as written: escapes, spacing and number
// spellings survive a trip through the JSON envelope and structured modes.
TEST(WireRoundTrip, PayloadBytesAreKeptExactly) {
  const std::string payloads[] = {
      R"({"name":"Zo\u00eb","n":1.50,"nested":{"a":[1, 2 ,3]}})",
      R"({ "spaced" : "yes" , "esc": "a\"b\\c\/d" })",
      R"([1,2,3])",
      R"(42)",
  };
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
    for (const std::string& payload : payloads) {
      Envelope e;
      e.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77";
      e.type = "t.happened";
      e.topic = "t";
      e.key = "k";
      e.payload = payload;
      absl::StatusOr<Record> r = EncodeRecord(e, mode);
      ASSERT_TRUE(r.ok()) << r.status();
      absl::StatusOr<Envelope> back = DecodeRecord("t", r->key, r->value, r->headers);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->payload, payload) << "mode " << static_cast<int>(mode);
    }
  }
}

TEST(DecodeRecord, GoEnvelopePayloadIsTakenVerbatim) {
  std::string value = R"({"id":"x1","type":"customer.created","timestamp":"2026-01-02T03:04:05Z",)"
                      R"("payload": {"customer_id" : "c\u00e91", "details":"d"} })";
  absl::StatusOr<Envelope> e = DecodeRecord("customer-events", "c1", value, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->payload, R"({"customer_id" : "c\u00e91", "details":"d"})");
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

// About 200 KB of nesting: far over the limit, and deep enough to overflow
// the stack of a recursive parser.
constexpr int kHostileDepth = 100'000;

// `depth` nested arrays: "[[[...]]]".
std::string NestedArrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }
// `depth` nested objects: {"a":{"a":...1...}}.
std::string NestedObjects(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"a":)";
  s += "1";
  s += std::string(depth, '}');
  return s;
}

const std::string& DeepPayloads(size_t i) {
  static const std::string* payloads =
      new std::string[3]{NestedArrays(kHostileDepth), NestedObjects(kHostileDepth / 2),
                         std::string(2 * kHostileDepth, '[')};  // only opened, never closed
  return payloads[i];
}

Envelope EnvelopeWith(std::string payload) {
  Envelope e;
  e.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77";
  e.type = "t.happened";
  e.topic = "t";
  e.key = "k";
  e.payload = std::move(payload);
  return e;
}

auto IsOverTheDepthLimit() { return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kMaxJsonDepth = 128")); }

TEST(WireLimits, DeeplyNestedPayloadIsRejectedByEncodeRecordWithoutCrashing) {
  for (size_t i = 0; i < 3; ++i) {
    Envelope e = EnvelopeWith(DeepPayloads(i));
    EXPECT_THAT(EncodeRecord(e, WireMode::kJsonEnvelope), IsOverTheDepthLimit()) << i;
    EXPECT_THAT(EncodeRecord(e, WireMode::kCloudEventsStructured), IsOverTheDepthLimit()) << i;
    EXPECT_THAT(EncodeJsonEnvelope(e), IsOverTheDepthLimit()) << i;
  }
}

TEST(WireLimits, DeeplyNestedRecordValuesAreRejectedByDecodeRecordInEveryMode) {
  const Headers envelope_headers = {{"ce_specversion", "1.0"},
                                    {"ce_id", "1"},
                                    {"ce_source", "s"},
                                    {"ce_type", "x"},
                                    {"content-type", "application/json"}};
  const Headers structured = {{"content-type", "application/cloudevents+json"}};
  const Headers binary = {{"ce_specversion", "1.0"}, {"ce_id", "1"}, {"ce_type", "x"}};
  for (size_t i = 0; i < 3; ++i) {
    const std::string& deep = DeepPayloads(i);
    std::string envelope = R"({"id":"1","type":"x","timestamp":"2026-01-02T03:04:05Z","payload":)" + deep + "}";
    std::string event = R"({"specversion":"1.0","id":"1","source":"s","type":"x","data":)" + deep + "}";
    // JSON envelope, as herald writes it and as a Go producer writes it (no headers).
    EXPECT_THAT(DecodeRecord("t", "k", envelope, envelope_headers), IsOverTheDepthLimit()) << i;
    EXPECT_THAT(DecodeRecord("t", "k", envelope, {}), IsOverTheDepthLimit()) << i;
    // CloudEvents structured, with its content type and detected without it.
    EXPECT_THAT(DecodeRecord("t", "k", event, structured), IsOverTheDepthLimit()) << i;
    EXPECT_THAT(DecodeRecord("t", "k", event, {}), IsOverTheDepthLimit()) << i;
    // CloudEvents binary with a JSON payload, and a bare value.
    EXPECT_THAT(DecodeRecord("t", "k", deep, binary), IsOverTheDepthLimit()) << i;
    EXPECT_THAT(DecodeRecord("t", "k", deep, {}), StatusIs(absl::StatusCode::kInvalidArgument)) << i;
  }
}

// The limit counts the payload's levels: the envelope's own level is free,
// so a payload at the limit goes through every mode and one deeper does not.
TEST(WireLimits, PayloadAtTheLimitRoundTripsInEveryModeAndOneDeeperIsRejected) {
  for (const std::string& payload : {NestedArrays(kMaxJsonDepth), NestedObjects(kMaxJsonDepth)}) {
    for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
      Envelope e = EnvelopeWith(payload);
      absl::StatusOr<Record> r = EncodeRecord(e, mode);
      ASSERT_THAT(r, IsOk()) << static_cast<int>(mode);
      absl::StatusOr<Envelope> back = DecodeRecord("t", r->key, r->value, r->headers);
      ASSERT_THAT(back, IsOk()) << static_cast<int>(mode);
      EXPECT_EQ(back->payload, payload);
    }
  }
  for (const std::string& payload : {NestedArrays(kMaxJsonDepth + 1), NestedObjects(kMaxJsonDepth + 1)}) {
    Envelope e = EnvelopeWith(payload);
    EXPECT_THAT(EncodeRecord(e, WireMode::kJsonEnvelope), IsOverTheDepthLimit());
    EXPECT_THAT(EncodeRecord(e, WireMode::kCloudEventsStructured), IsOverTheDepthLimit());
    // What another producer could write around it.
    std::string envelope = R"({"id":"1","type":"x","payload":)" + payload + "}";
    EXPECT_THAT(DecodeRecord("t", "k", envelope, {}), IsOverTheDepthLimit());
    std::string event = R"({"specversion":"1.0","id":"1","type":"x","data":)" + payload + "}";
    EXPECT_THAT(DecodeRecord("t", "k", event, {}), IsOverTheDepthLimit());
    EXPECT_THAT(DecodeRecord("t", "k", payload, {{"ce_id", "1"}, {"ce_type", "x"}}), IsOverTheDepthLimit());
  }
}

// RapidJSON stops at a NUL byte as at the end of the text; herald must not
// take "{}" and pass the NUL and the junk after it on (into invalid JSON).
TEST(WireLimits, NulByteAndJunkAfterAValueAreInvalidJsonEverywhere) {
  const std::string junk = std::string("{}\0garbage", 10);
  ASSERT_EQ(junk.size(), 10u);
  Envelope e = EnvelopeWith(junk);
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured}) {
    EXPECT_THAT(EncodeRecord(e, mode), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL byte")))
        << static_cast<int>(mode);
  }
  EXPECT_THAT(EncodeJsonEnvelope(e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL byte")));
  Envelope nul_only = EnvelopeWith(std::string("{}\0", 3));
  EXPECT_THAT(EncodeRecord(nul_only), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL byte")));
  Envelope nul_inside = EnvelopeWith(std::string("[1,\0 2]", 7));
  EXPECT_THAT(EncodeRecord(nul_inside), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL byte")));
  // White space after the value is fine.
  EXPECT_THAT(EncodeRecord(EnvelopeWith("{} \n")), IsOk());

  const std::string tail = std::string("\0garbage", 8);
  std::string envelope = R"({"id":"1","type":"x","payload":{}})" + tail;
  std::string envelope_inner = R"({"id":"1","type":"x","payload":{})" + tail + "}";
  std::string event = R"({"specversion":"1.0","id":"1","type":"x","data":{}})" + tail;
  const Headers ce = {{"ce_id", "1"}, {"ce_type", "x"}, {"content-type", "application/json"}};
  const Headers structured = {{"content-type", "application/cloudevents+json"}};
  for (const Headers& h : {Headers{}, ce}) {
    EXPECT_THAT(DecodeRecord("t", "k", envelope, h), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
    EXPECT_THAT(DecodeRecord("t", "k", envelope_inner, h), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(DecodeRecord("t", "k", event, structured),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  EXPECT_THAT(DecodeRecord("t", "k", event, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  EXPECT_THAT(DecodeRecord("t", "k", junk, ce), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  // A binary payload that is not JSON keeps its bytes, NUL and all.
  Headers octets = {{"ce_id", "1"}, {"ce_type", "x"}, {"content-type", "application/octet-stream"}};
  absl::StatusOr<Envelope> raw = DecodeRecord("t", "k", junk, octets);
  ASSERT_THAT(raw, IsOk());
  EXPECT_EQ(raw->payload, junk);
}

}  // namespace
}  // namespace herald

// Regression tests for what fuzz/decode_record_fuzzer and
// fuzz/wire_roundtrip_fuzzer found (docs/fuzzing.md).
namespace herald {
namespace {

using ::herald::testing::IsOk;

// A structured CloudEvent without data decoded to an empty payload with a
// JSON content type, which EncodeRecord then refused (not JSON): a service
// could not pass such an event on.
TEST(WireFuzzFindings, StructuredEventWithoutDataIsANullPayloadThatReencodes) {
  const Headers structured = {{"content-type", "application/cloudevents+json"}};
  absl::StatusOr<Envelope> e =
      DecodeRecord("t", "k", R"({"specversion":"1.0","id":"1","source":"s","type":"x"})", structured);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->payload, "null");
  for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary}) {
    absl::StatusOr<Record> r = EncodeRecord(*e, mode);
    ASSERT_THAT(r, IsOk()) << static_cast<int>(mode);
    absl::StatusOr<Envelope> back = DecodeRecord("t", r->key, r->value, r->headers);
    ASSERT_THAT(back, IsOk()) << static_cast<int>(mode);
    EXPECT_EQ(back->payload, "null");
  }
  // Without data and with a non-JSON content type the payload is empty bytes.
  absl::StatusOr<Envelope> text =
      DecodeRecord("t", "k", R"({"specversion":"1.0","id":"1","type":"x","datacontenttype":"text/plain"})", structured);
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(text->payload, "");
  EXPECT_THAT(EncodeRecord(*text), IsOk());
}

// A timestamp with more than nine fraction digits decoded to a time that
// re-encoded (in nanoseconds) as another time.
TEST(WireFuzzFindings, TimestampPastNanosecondsRoundTrips) {
  absl::StatusOr<Envelope> e = DecodeRecord(
      "t", "k", R"({"id":"1","type":"x","timestamp":"2025-11-27T07:01:29.17777777775+00:00","payload":{}})", {});
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->time, absl::FromUnixNanos(1764226889177777777));
  absl::StatusOr<Record> r = EncodeRecord(*e);
  ASSERT_THAT(r, IsOk());
  absl::StatusOr<Envelope> back = DecodeRecord("t", r->key, r->value, r->headers);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->time, e->time);
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;

// A structured event took any integer as its schema version (0, -3), which
// the binary and JSON envelope modes reject (ce_schemaversion must be
// positive): it decoded in one mode and not after re-encoding in another.
TEST(WireFuzzFindings, StructuredSchemaVersionMustBePositiveAsInEveryMode) {
  const Headers structured = {{"content-type", "application/cloudevents+json"}};
  for (const char* bad : {"0", "-3", "1.5", "\"zero\"", "\"0\"", "null", "{}"}) {
    std::string value =
        std::string(R"({"specversion":"1.0","id":"1","type":"x","data":{},"schemaversion":)") + bad + "}";
    EXPECT_THAT(DecodeRecord("t", "k", value, structured),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("schemaversion")))
        << bad;
  }
  for (const char* good : {"2", "\"2\""}) {
    std::string value =
        std::string(R"({"specversion":"1.0","id":"1","type":"x","data":{},"schemaversion":)") + good + "}";
    absl::StatusOr<Envelope> e = DecodeRecord("t", "k", value, structured);
    ASSERT_THAT(e, IsOk()) << good;
    EXPECT_EQ(e->schema_version, 2);
    absl::StatusOr<Record> r = EncodeRecord(*e);
    ASSERT_THAT(r, IsOk());
    absl::StatusOr<Envelope> back = DecodeRecord("t", r->key, r->value, r->headers);
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->schema_version, 2);
  }
}

}  // namespace
}  // namespace herald

// ---- CloudEvents attributes: subject, dataschema, extensions, data_base64,
// the tracing and partition-key extensions (issue 9, item 4) ----

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::_;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

constexpr WireMode kAllModes[] = {WireMode::kJsonEnvelope, WireMode::kCloudEventsStructured, WireMode::kBinary};
const Headers kStructured = {{"content-type", "application/cloudevents+json"}};

Envelope WithAttributes() {
  Envelope e;
  e.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77";
  e.type = "customer.created";
  e.topic = "customer-events";
  e.key = "cust-42";
  e.source = "customer-service";
  e.time = absl::FromUnixMillis(1764226889123);
  e.subject = "customers/cust-42";
  e.dataschema = "https://schemas.example.com/customer/v2.json";
  e.extensions = {{"region", "eu1"}, {"sequence", "7"}, {"sampled", "true"}};
  e.headers = {{"correlation-id", "req-7"},
               {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
               {"tracestate", "vendor=opaque"}};
  e.payload = R"({"customer_id":"cust-42"})";
  return e;
}

TEST(CloudEventsAttributes, SubjectDataschemaAndExtensionsSurviveEveryMode) {
  Envelope e = WithAttributes();
  for (WireMode mode : kAllModes) {
    absl::StatusOr<Record> r = EncodeRecord(e, mode);
    ASSERT_THAT(r, IsOk()) << static_cast<int>(mode);
    EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e)) << static_cast<int>(mode);
  }
}

TEST(CloudEventsAttributes, BinaryHeadersCarryEveryAttribute) {
  absl::StatusOr<Record> r = EncodeRecord(WithAttributes(), WireMode::kBinary);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->value, R"({"customer_id":"cust-42"})");
  EXPECT_THAT(r->headers,
              ElementsAre(Pair("ce_specversion", "1.0"), Pair("ce_id", _), Pair("ce_source", "customer-service"),
                          Pair("ce_type", "customer.created"), Pair("ce_time", "2025-11-27T07:01:29.123Z"),
                          Pair("content-type", "application/json"), Pair("ce_subject", "customers/cust-42"),
                          Pair("ce_dataschema", "https://schemas.example.com/customer/v2.json"),
                          Pair("ce_partitionkey", "cust-42"),
                          Pair("ce_traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                          Pair("ce_tracestate", "vendor=opaque"), Pair("ce_region", "eu1"), Pair("ce_sequence", "7"),
                          Pair("ce_sampled", "true"), Pair("correlation-id", "req-7"), Pair("traceparent", _),
                          Pair("tracestate", "vendor=opaque")));
}

TEST(CloudEventsAttributes, StructuredMembersCarryEveryAttribute) {
  absl::StatusOr<Record> r = EncodeRecord(WithAttributes(), WireMode::kCloudEventsStructured);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->value, R"({"specversion":"1.0","id":"0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77","source":"customer-service",)"
                      R"("type":"customer.created","time":"2025-11-27T07:01:29.123Z","subject":"customers/cust-42",)"
                      R"("dataschema":"https://schemas.example.com/customer/v2.json","partitionkey":"cust-42",)"
                      R"("traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",)"
                      R"("tracestate":"vendor=opaque","region":"eu1","sequence":"7","sampled":"true",)"
                      R"("datacontenttype":"application/json","data":{"customer_id":"cust-42"}})");
}

// What a CloudEvents SDK writes: extensions of every JSON type, read in
// their canonical string form; null is absent.
TEST(CloudEventsAttributes, StructuredExtensionsOfEveryTypeAreKept) {
  const std::string value =
      R"({"specversion":"1.0","id":"e-1","source":"/py","type":"t","subject":"s","dataschema":"urn:x",)"
      R"("comexampleint":42,"comexamplebool":false,"comexamplestr":"a b","comexamplefloat":1.5,)"
      R"("gone":null,"data":{"a":1}})";
  absl::StatusOr<Envelope> e = DecodeRecord("t", "k", value, kStructured);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->subject, "s");
  EXPECT_EQ(e->dataschema, "urn:x");
  EXPECT_THAT(e->extensions, ElementsAre(Pair("comexampleint", "42"), Pair("comexamplebool", "false"),
                                         Pair("comexamplestr", "a b"), Pair("comexamplefloat", "1.5")));
  EXPECT_EQ(e->payload, R"({"a":1})");
}

TEST(CloudEventsAttributes, InvalidAttributesAreInvalidArgument) {
  for (const char* bad : {R"("x-y":"1")", R"("Upper":"1")", R"("_c":"1")", R"("ext":{"a":1})", R"("ext":[1])",
                          R"("subject":7)", R"("dataschema":{})", R"("traceparent":[])"}) {
    std::string value = std::string(R"({"specversion":"1.0","id":"1","type":"x",)") + bad + R"(,"data":{}})";
    EXPECT_THAT(DecodeRecord("t", "k", value, kStructured), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  for (const char* bad : {"ce_x-y", "ce_", "ce_data", "ce_data_base64", "ce_ext.v"}) {
    Headers h = {{"ce_id", "1"}, {"ce_type", "x"}, {bad, "v"}};
    EXPECT_THAT(DecodeRecord("t", "k", "{}", h),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CloudEvents attribute")))
        << bad;
  }
}

TEST(CloudEventsAttributes, BinaryHeaderNamesAreReadAsTheSdksReadThem) {
  // The prefix and the attribute names in any case, lowercased; the first of
  // a repeated name wins (one header per name, as herald writes them).
  Headers h = {{"CE_ID", "1"},       {"ce_Type", "x"},    {"Content-Type", "text/plain"},
               {"ce_Region", "eu1"}, {"ce_region", "us"}, {"ce_Subject", "s"},
               {"app", "v"}};
  absl::StatusOr<Envelope> e = DecodeRecord("t", "k", "hello", h);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->id, "1");
  EXPECT_EQ(e->type, "x");
  EXPECT_EQ(e->content_type, "text/plain");
  EXPECT_EQ(e->payload, "hello");
  EXPECT_EQ(e->subject, "s");
  EXPECT_THAT(e->extensions, ElementsAre(Pair("region", "eu1")));
  EXPECT_THAT(e->headers, ElementsAre(Pair("app", "v")));
}

TEST(CloudEventsAttributes, EncodeRejectsExtensionsItCannotWrite) {
  for (Extensions bad :
       {Extensions{{"x-y", "1"}}, Extensions{{"", "1"}}, Extensions{{"Region", "1"}}, Extensions{{"id", "spoof"}},
        Extensions{{"subject", "use the field"}}, Extensions{{"traceparent", "use the header"}},
        Extensions{{"data", "1"}}, Extensions{{"a", "1"}, {"a", "2"}}}) {
    Envelope e = WithAttributes();
    e.extensions = bad;
    for (WireMode mode : kAllModes) {
      EXPECT_THAT(EncodeRecord(e, mode), StatusIs(absl::StatusCode::kInvalidArgument)) << bad[0].first;
    }
  }
}

// ---- data_base64 ----

TEST(CloudEventsDataBase64, StructuredDataBase64IsTheDecodedBytes) {
  const std::string value = R"({"specversion":"1.0","id":"e-2","source":"/sensors/1","type":"reading.taken",)"
                            R"("datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="})";
  absl::StatusOr<Envelope> e = DecodeRecord("t", "k", value, kStructured);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->payload, std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(e->content_type, "application/octet-stream");
  EXPECT_TRUE(e->extensions.empty());
}

TEST(CloudEventsDataBase64, JsonInDataBase64IsValidatedAndWithoutContentTypeIsOctets) {
  // {"a":1} in base64, with a JSON content type: the JSON payload.
  std::string value =
      R"({"specversion":"1.0","id":"1","type":"x","datacontenttype":"application/json","data_base64":"eyJhIjoxfQ=="})";
  EXPECT_THAT(DecodeRecord("t", "k", value, kStructured), IsOk());
  absl::StatusOr<Envelope> e = DecodeRecord("t", "k", value, kStructured);
  EXPECT_EQ(e->payload, R"({"a":1})");
  EXPECT_EQ(e->content_type, "application/json");
  // "hello" is not JSON.
  value = R"({"specversion":"1.0","id":"1","type":"x","datacontenttype":"application/json","data_base64":"aGVsbG8="})";
  EXPECT_THAT(DecodeRecord("t", "k", value, kStructured), StatusIs(absl::StatusCode::kInvalidArgument));
  value = R"({"specversion":"1.0","id":"1","type":"x","data_base64":"aGVsbG8="})";
  e = DecodeRecord("t", "k", value, kStructured);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->payload, "hello");
  EXPECT_EQ(e->content_type, "application/octet-stream");
}

TEST(CloudEventsDataBase64, MalformedDataBase64IsInvalidArgument) {
  for (const char* bad :
       {R"("data_base64":"not base64!")", R"("data_base64":12)", R"("data_base64":"AAEC","data":"x")"}) {
    std::string value = std::string(R"({"specversion":"1.0","id":"1","type":"x",)") +
                        R"("datacontenttype":"application/octet-stream",)" + bad + "}";
    EXPECT_THAT(DecodeRecord("t", "k", value, kStructured), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(CloudEventsDataBase64, StructuredModeWritesBinaryPayloadsAsDataBase64) {
  Envelope e = WithAttributes();
  e.content_type = "application/octet-stream";
  e.payload = std::string("\x00\x01\x02\xff", 4);
  absl::StatusOr<Record> r = EncodeRecord(e, WireMode::kCloudEventsStructured);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->value, HasSubstr(R"("datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="})"));
  EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e));
  // Text that is UTF-8 stays text; text that is not goes as base64.
  e.content_type = "text/plain; charset=utf-8";
  e.payload = "Zoë";
  r = EncodeRecord(e, WireMode::kCloudEventsStructured);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->value, HasSubstr(R"("data":"Zoë")"));
  EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e));
  e.payload = "Zo\xeb";  // Latin-1
  r = EncodeRecord(e, WireMode::kCloudEventsStructured);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->value, HasSubstr(R"("data_base64":"Wm/r")"));
  EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e));
  // Binary mode carries the bytes as they are.
  r = EncodeRecord(e, WireMode::kBinary);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->value, e.payload);
  EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e));
}

// ---- the distributed-tracing and partition-key extensions ----

TEST(CloudEventsTracing, CeTraceparentBecomesTheTraceparentHeader) {
  Headers h = {{"ce_specversion", "1.0"},
               {"ce_id", "1"},
               {"ce_type", "x"},
               {"ce_source", "/py"},
               {"ce_traceparent", "00-aaaa-bbbb-01"},
               {"ce_tracestate", "k=v"},
               {"content-type", "application/json"},
               {"correlation-id", "c"}};
  absl::StatusOr<Envelope> e = DecodeRecord("t", "k", "{}", h);
  ASSERT_THAT(e, IsOk());
  EXPECT_THAT(e->headers, ElementsAre(Pair("correlation-id", "c"), Pair("traceparent", "00-aaaa-bbbb-01"),
                                      Pair("tracestate", "k=v")));
  EXPECT_TRUE(e->extensions.empty());
  // Structured: the members.
  const std::string value =
      R"({"specversion":"1.0","id":"1","type":"x","traceparent":"00-cccc-dddd-01","tracestate":"a=b","data":{}})";
  e = DecodeRecord("t", "k", value, kStructured);
  ASSERT_THAT(e, IsOk());
  EXPECT_THAT(e->headers, ElementsAre(Pair("traceparent", "00-cccc-dddd-01"), Pair("tracestate", "a=b")));
  EXPECT_TRUE(e->extensions.empty());
}

TEST(CloudEventsTracing, ATraceparentHeaderOfTheRecordWins) {
  // The plain header is the current hop's (set by tracing middleware on the
  // way); the extension keeps the event's first one.
  Headers h = {{"ce_id", "1"},
               {"ce_type", "x"},
               {"ce_traceparent", "00-old-old-01"},
               {"ce_tracestate", "old=1"},
               {"traceparent", "00-new-new-01"}};
  absl::StatusOr<Envelope> e = DecodeRecord("t", "k", "{}", h);
  ASSERT_THAT(e, IsOk());
  EXPECT_THAT(e->headers, ElementsAre(Pair("traceparent", "00-new-new-01")));
  std::string value = R"({"specversion":"1.0","id":"1","type":"x","traceparent":"00-old-old-01","data":{}})";
  Headers structured = kStructured;
  structured.emplace_back("traceparent", "00-new-new-01");
  e = DecodeRecord("t", "k", value, structured);
  ASSERT_THAT(e, IsOk());
  EXPECT_THAT(e->headers, ElementsAre(Pair("traceparent", "00-new-new-01")));
}

TEST(CloudEventsPartitionKey, PartitionKeyIsTheKeyWhenTheRecordHasNone) {
  Headers h = {{"ce_id", "1"}, {"ce_type", "x"}, {"ce_source", "/py"}, {"ce_partitionkey", "cust-9"}};
  absl::StatusOr<Envelope> e = DecodeRecord("t", "", "{}", h);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->key, "cust-9");
  EXPECT_TRUE(e->extensions.empty());
  // The same key: nothing more to keep.
  e = DecodeRecord("t", "cust-9", "{}", h);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->key, "cust-9");
  EXPECT_TRUE(e->extensions.empty());
  // A different one is kept, and written back as it was.
  e = DecodeRecord("t", "other", "{}", h);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->key, "other");
  EXPECT_THAT(e->extensions, ElementsAre(Pair("partitionkey", "cust-9")));
  for (WireMode mode : kAllModes) {
    absl::StatusOr<Record> r = EncodeRecord(*e, mode);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->key, "other");
    EXPECT_THAT(DecodeRecord("t", r->key, r->value, r->headers), IsOkAndHolds(*e)) << static_cast<int>(mode);
  }
  // Structured.
  e = DecodeRecord("t", "", R"({"specversion":"1.0","id":"1","type":"x","partitionkey":"cust-8","data":{}})",
                   kStructured);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->key, "cust-8");
}

TEST(CloudEventsPartitionKey, NoKeyNoPartitionKey) {
  Envelope e = WithAttributes();
  e.key.clear();
  for (WireMode mode : kAllModes) {
    absl::StatusOr<Record> r = EncodeRecord(e, mode);
    ASSERT_THAT(r, IsOk());
    EXPECT_THAT(r->headers, Not(Contains(Pair("ce_partitionkey", _))));
    EXPECT_THAT(r->value, Not(HasSubstr("partitionkey")));
  }
}

// ---- the default mode as a CloudEvents SDK reads it ----

// In the default mode the value is the JSON envelope and content-type is
// application/json, so an SDK that reads the record in binary mode takes
// the whole envelope as its `data` (wire.h says so); kBinary gives it the
// payload alone.
TEST(CloudEventsModes, SdkDataIsTheWholeEnvelopeByDefaultAndThePayloadInBinaryMode) {
  Envelope e = WithAttributes();
  absl::StatusOr<Record> by_default = EncodeRecord(e);
  ASSERT_THAT(by_default, IsOk());
  EXPECT_THAT(by_default->headers, Contains(Pair("content-type", "application/json")));
  EXPECT_THAT(EncodeJsonEnvelope(e), IsOkAndHolds(by_default->value));
  absl::StatusOr<Record> binary = EncodeRecord(e, WireMode::kBinary);
  ASSERT_THAT(binary, IsOk());
  EXPECT_EQ(binary->value, e.payload);
  // herald's own consumers read all three alike.
  for (WireMode mode : kAllModes) {
    absl::StatusOr<Record> r = EncodeRecord(e, mode);
    ASSERT_THAT(r, IsOk());
    EXPECT_THAT(DecodeRecord(e.topic, r->key, r->value, r->headers), IsOkAndHolds(e));
  }
}

// ---- empty ids and types (issue 8, item 7) ----

TEST(DecodeRecordEmptyIds, EmptyIdOrTypeIsInvalidArgumentInEveryMode) {
  for (Headers h : {Headers{{"ce_id", ""}, {"ce_type", "x"}}, Headers{{"ce_id", "1"}, {"ce_type", ""}}}) {
    EXPECT_THAT(DecodeRecord("t", "k", "{}", h), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")))
        << h[0].second << "/" << h[1].second;
  }
  for (const char* value : {R"({"id":"","type":"x","timestamp":"2026-01-02T03:04:05Z","payload":{}})",
                            R"({"id":"1","type":"","timestamp":"2026-01-02T03:04:05Z","payload":{}})"}) {
    EXPECT_THAT(DecodeRecord("t", "k", value, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")))
        << value;
  }
  for (const char* value : {R"({"specversion":"1.0","id":"","type":"x","data":{}})",
                            R"({"specversion":"1.0","id":"1","type":"","data":{}})"}) {
    EXPECT_THAT(DecodeRecord("t", "k", value, kStructured),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")))
        << value;
  }
}

// A record with an empty ce_type used to decode with type "" and be
// skipped as an unknown type by a subscription that skips those: now the
// dispatcher dead-letters it with its bytes and the reason.
TEST(DecodeRecordEmptyIds, TheDispatcherDeadLettersThemInsteadOfSkipping) {
  ::testing::StrictMock<::herald::testing::MockTransport> transport;
  SubscribeOptions options;
  options.group = "reader";
  options.topics = {"customer-events"};
  options.accepted_types = {"customer.created"};
  options.skip_unknown_types = true;
  int handled = 0;
  Dispatcher dispatcher(transport, options, [&](const Message&) {
    ++handled;
    return absl::OkStatus();
  });
  std::vector<std::pair<std::string, Record>> dead;
  EXPECT_CALL(transport, PublishRecord(_, _, _))
      .Times(2)
      .WillRepeatedly([&](std::string topic, Record record, PublishCallback done) {
        dead.emplace_back(std::move(topic), std::move(record));
        done(DeliveryReport{});
      });
  for (const Headers& headers :
       {Headers{{"ce_id", "1"}, {"ce_type", ""}}, Headers{{"ce_id", ""}, {"ce_type", "customer.created"}}}) {
    ReceivedRecord record;
    record.topic = "customer-events";
    record.partition = 2;
    record.offset = 9;
    record.group = "reader";
    record.key = "cust-1";
    record.value = "{}";
    record.headers = &headers;
    EXPECT_EQ(dispatcher.Dispatch(record), Verdict::Ack());
  }
  EXPECT_EQ(handled, 0);
  EXPECT_EQ(dispatcher.stats().skipped.load(), 0);
  EXPECT_EQ(dispatcher.stats().undecodable.load(), 2);
  EXPECT_EQ(dispatcher.stats().dead_lettered.load(), 2);
  ASSERT_EQ(dead.size(), 2u);
  for (const auto& [topic, record] : dead) {
    EXPECT_EQ(topic, "customer-events.dlq");
    EXPECT_EQ(record.value, "{}");
    EXPECT_EQ(record.key, "cust-1");
  }
  EXPECT_THAT(dead[0].second.headers, Contains(Pair(_, HasSubstr("empty type"))));
  EXPECT_THAT(dead[1].second.headers, Contains(Pair(_, HasSubstr("empty id"))));
}

// An event whose data was declared application/cloudevents+json decoded
// from a structured record (or a ce_datacontenttype header), and then its
// binary-mode record said "structured" in content-type and did not decode.
TEST(CloudEventsAttributes, DataCannotBeDeclaredAStructuredCloudEvent) {
  EXPECT_THAT(DecodeRecord("t", "k",
                           R"({"specversion":"1.0","id":"1","type":"x",)"
                           R"("datacontenttype":"application/cloudevents+json","data":{}})",
                           kStructured),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("application/cloudevents+json")));
  Headers h = {{"ce_id", "1"}, {"ce_type", "x"}, {"ce_datacontenttype", "application/cloudevents+json"}};
  EXPECT_THAT(DecodeRecord("t", "k", "{}", h), StatusIs(absl::StatusCode::kInvalidArgument));
  Envelope e = WithAttributes();
  e.content_type = "application/cloudevents+json";
  EXPECT_THAT(EncodeRecord(e, WireMode::kBinary), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeRecord(e, WireMode::kCloudEventsStructured), StatusIs(absl::StatusCode::kInvalidArgument));
}

// EncodeRecord's JSON envelope is assembled without RapidJSON's Writer, for
// speed; its bytes must stay the Writer's, which the Go services read: every
// byte value in id, type and a text payload, and random byte strings.
std::string WriterEnvelope(const Envelope& e, bool raw_payload) {
  rapidjson::StringBuffer buffer;
  json::Writer w(buffer);
  auto string = [&](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  w.Key("id");
  string(e.id);
  w.Key("type");
  string(e.type);
  w.Key("timestamp");
  string(json::internal::FormatTime(e.time));
  w.Key("payload");
  if (raw_payload) {
    std::string_view trimmed = json::TrimWhitespace(e.payload);
    w.RawValue(trimmed.data(), trimmed.size(), rapidjson::kObjectType);
  } else {
    string(e.payload);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

TEST(EncodeRecord, JsonEnvelopeBytesAreRapidJsonWritersForEveryByte) {
  std::string every;
  for (int c = 0; c < 256; ++c) every.push_back(static_cast<char>(c));
  Envelope e = WithAttributes();
  e.id = every;
  e.type = "t" + every + "\"\\";
  e.payload = every + "tail";
  e.content_type = "text/plain";
  absl::StatusOr<Record> r = EncodeRecord(e);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->value, WriterEnvelope(e, false));
  EXPECT_THAT(EncodeJsonEnvelope(e), IsOkAndHolds(WriterEnvelope(e, false)));

  std::mt19937 random(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(random() % 40, '\0');
    for (char& c : bytes) c = static_cast<char>(i % 2 == 0 ? random() % 256 : random() % 48);  // many escapes
    e.id = bytes;
    e.payload = bytes;
    ASSERT_THAT(EncodeJsonEnvelope(e), IsOkAndHolds(WriterEnvelope(e, false))) << i;
  }
  e.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77";
  e.content_type = "application/json";
  e.payload = " \n {\"a\": [1, \"\\u0001\", {\"b\": null}], \"c\": \"x\\ny\"}\t\r\n";
  ASSERT_THAT(EncodeRecord(e), IsOk());
  EXPECT_EQ(EncodeRecord(e)->value, WriterEnvelope(e, true));
}

// EncodeRecordValue is what the Kafka transport produces from: the same
// value and headers, in the same order, as EncodeRecord in every mode.
TEST(EncodeRecordValue, GivesEncodeRecordsValueAndHeadersInOrder) {
  Envelope plain = Sample();
  Envelope attributes = WithAttributes();
  attributes.schema_version = 3;
  attributes.headers.emplace_back("ce_id", "an application header with a reserved name is dropped");
  attributes.headers.emplace_back("tracestate", "x=1");
  for (const Envelope* e : {&plain, &attributes}) {
    for (WireMode mode : {WireMode::kJsonEnvelope, WireMode::kBinary, WireMode::kCloudEventsStructured}) {
      Headers headers;
      absl::StatusOr<std::string> value = EncodeRecordValue(
          *e, mode, [&](std::string_view name, std::string_view text) { headers.emplace_back(name, text); });
      absl::StatusOr<Record> record = EncodeRecord(*e, mode);
      ASSERT_THAT(value, IsOk());
      ASSERT_THAT(record, IsOk());
      EXPECT_EQ(*value, record->value);
      EXPECT_EQ(headers, record->headers);
      EXPECT_EQ(record->key, e->key);
    }
  }
}

TEST(EncodeRecordValue, AnEnvelopeThatDoesNotEncodeGivesNoHeader) {
  Envelope not_json = WithAttributes();
  not_json.payload = "{not json";
  Envelope no_id = WithAttributes();
  no_id.id.clear();
  Envelope structured_data = WithAttributes();
  structured_data.content_type = "application/cloudevents+json";
  for (auto [e, mode] :
       {std::pair{&not_json, WireMode::kJsonEnvelope}, std::pair{&not_json, WireMode::kCloudEventsStructured},
        std::pair{&no_id, WireMode::kJsonEnvelope}, std::pair{&structured_data, WireMode::kBinary}}) {
    int headers = 0;
    EXPECT_THAT(EncodeRecordValue(*e, mode, [&](std::string_view, std::string_view) { ++headers; }),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_EQ(headers, 0);
  }
}

// DecodeReceivedRecordInto (transport.h) is what the dispatcher calls for
// every record, into one reused Message: a record decoded after another must
// leave nothing of the first behind (headers, payload, coordinates), and a
// record that does not decode is an error, not the previous Message.
TEST(DecodeReceivedRecordInto, ReusedMessageHoldsOnlyTheLastRecord) {
  Envelope first = Sample();
  Envelope second = Sample();
  second.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a78";
  second.key = "k";
  second.headers.clear();
  second.payload = R"({"n":1})";
  absl::StatusOr<Record> a = EncodeRecord(first);
  absl::StatusOr<Record> b = EncodeRecord(second);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  Message m;
  ReceivedRecord ra{.topic = first.topic,
                    .partition = 3,
                    .offset = 70,
                    .group = "g1",
                    .attempt = 2,
                    .key = a->key,
                    .value = a->value,
                    .headers = &a->headers};
  ASSERT_THAT(DecodeReceivedRecordInto(ra, m), IsOk());
  EXPECT_EQ(m.envelope, first);
  EXPECT_EQ(m.partition, 3);
  EXPECT_EQ(m.offset, 70);
  EXPECT_EQ(m.group, "g1");
  EXPECT_EQ(m.attempt, 2);
  ReceivedRecord rb{.topic = second.topic,
                    .partition = 1,
                    .offset = 71,
                    .group = "g2",
                    .key = b->key,
                    .value = b->value,
                    .headers = &b->headers};
  ASSERT_THAT(DecodeReceivedRecordInto(rb, m), IsOk());
  EXPECT_EQ(m.envelope, second) << m.envelope << "\n" << second;
  EXPECT_EQ(m.topic, second.topic);
  EXPECT_EQ(m.group, "g2");
  EXPECT_EQ(m.attempt, 1);
  // The owning form gives the same Message.
  absl::StatusOr<Message> owned = DecodeReceivedRecord(rb);
  ASSERT_THAT(owned, IsOk());
  EXPECT_EQ(owned->envelope, m.envelope);
  EXPECT_EQ(owned->offset, 71);

  ReceivedRecord bad{.topic = "t", .group = "g", .value = "{\"id\":"};
  EXPECT_THAT(DecodeReceivedRecordInto(bad, m), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeReceivedRecord(bad), StatusIs(absl::StatusCode::kInvalidArgument));

  // A transport that moves envelopes hands them over as they are.
  ReceivedRecord moved{.topic = first.topic, .group = "g", .envelope = &first};
  ASSERT_THAT(DecodeReceivedRecordInto(moved, m), IsOk());
  EXPECT_EQ(m.envelope, first);
}

}  // namespace
}  // namespace herald
