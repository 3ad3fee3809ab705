#include "herald/core/log.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald {
namespace {

std::string Iso8601Millis(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string_view UpperName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

// A JSON string literal (RapidJSON escapes quotes, backslashes and control
// characters).
std::string JsonQuoted(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

// The message on one line: control characters (a newline in an error from
// a server) become spaces, so one record is always one line.
std::string OneLine(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = ' ';
  }
  return out;
}

bool IsFixedKey(std::string_view key) {
  return key == "time" || key == "level" || key == "component" || key == "message";
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return std::nullopt;
}

StreamLogSink::StreamLogSink(std::FILE* out, StreamLogOptions options) : out_(out), options_(options) {}

std::string StreamLogSink::Format(const LogRecord& record, LogFormat format) {
  static const LogFields kNoFields;
  const LogFields& fields = record.fields != nullptr ? *record.fields : kNoFields;
  if (format == LogFormat::kJson) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    auto string = [&writer](std::string_view s) {
      writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    };
    writer.StartObject();
    string("time");
    string(Iso8601Millis(record.time));
    string("level");
    string(LogLevelName(record.level));
    string("component");
    string(record.component);
    string("message");
    string(record.message);
    for (const auto& [key, value] : fields) {
      string(IsFixedKey(key) ? "field." + key : key);
      string(value);
    }
    writer.EndObject();
    std::string line(buffer.GetString(), buffer.GetSize());
    line += '\n';
    return line;
  }
  std::string line = Iso8601Millis(record.time);
  line += ' ';
  line += UpperName(record.level);
  line += ' ';
  line += OneLine(record.component);
  line += ": ";
  line += OneLine(record.message);
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += NeedsQuotes(key) ? JsonQuoted(key) : key;
    line += '=';
    line += NeedsQuotes(value) ? JsonQuoted(value) : value;
  }
  line += '\n';
  return line;
}

void StreamLogSink::Write(const LogRecord& record) {
  if (!Enabled(record.level)) return;
  const std::string line = Format(record, options_.format);
  MutexLock lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

LogSink& DefaultLogSink() {
  static auto* sink = new StreamLogSink(stderr, {.format = LogFormat::kText, .min_level = LogLevel::kWarning});
  return *sink;
}

void Log(LogSink& sink, LogLevel level, std::string_view component, std::string_view message, const LogFields& fields) {
  if (!sink.Enabled(level)) return;
  LogRecord record{absl::Now(), level, component, message, &fields};
  sink.Write(record);
}

}  // namespace herald
