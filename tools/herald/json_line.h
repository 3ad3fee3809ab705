// One JSON object on one line, as the `--json` listings of the `herald`
// commands print them (`herald dlq list --json`, `herald outbox stats|parked
// --json`): RapidJSON's Writer, compact, fields in the order written.
//
//   JsonLine line;
//   line.String("type", row.type).Int("attempts", row.attempts);
//   std::cout << line.Finish() << "\n";
//
// A string that is not valid UTF-8 (JSON strings must be) is written
// C-escaped ("\xff" as the four characters \ x f f), so a line always parses.
#ifndef HERALD_TOOLS_HERALD_JSON_LINE_H_
#define HERALD_TOOLS_HERALD_JSON_LINE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald::tools {

// True when `text` is valid UTF-8.
bool IsUtf8(std::string_view text);

class JsonLine {
 public:
  JsonLine();
  JsonLine(const JsonLine&) = delete;
  JsonLine& operator=(const JsonLine&) = delete;

  JsonLine& String(std::string_view name, std::string_view value);
  JsonLine& Int(std::string_view name, int64_t value);
  JsonLine& Double(std::string_view name, double value);
  JsonLine& Bool(std::string_view name, bool value);

  // Closes the object and returns it (no newline). Call once, last.
  std::string Finish();

 private:
  void Key(std::string_view name);

  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_JSON_LINE_H_
