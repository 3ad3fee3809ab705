#include "herald/core/json.h"

#include <algorithm>

#include "herald/core/strings.h"
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"

namespace herald::json {
namespace internal {

absl::Status TypeError(std::string_view path, std::string_view expected) {
  return absl::InvalidArgumentError(herald::StrCat("JSON member \"", path, "\" must be ", expected));
}

bool WriteRawJson(Writer& w, const std::string& text) {
  rapidjson::Document d;
  if (!json::Parse(text, d).ok()) {
    w.Null();
    return false;
  }
  return d.Accept(w);
}

absl::Status ReadRawJson(const rapidjson::Value& v, std::string& text) {
  text = Serialize(v);
  return absl::OkStatus();
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
// Hinnant's algorithms): exact integer arithmetic, no time zone lookups.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

void Put(char*& p, int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  p += width;
}

bool Digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

// RFC 3339 in UTC, written as Go's time.RFC3339Nano writes it (and so as
// Go's json.Marshal of a UTC time.Time): "Z" for the offset and as many
// sub-second digits as needed, trailing zeros trimmed (none for whole
// seconds), e.g. "2026-11-30T10:11:12.1234Z", with four-digit years as Go
// writes them ("0001-01-01T00:00:00Z" is Go's zero time). The same text as
// absl::FormatTime("%E4Y-%m-%dT%H:%M:%E*SZ") in UTC, without its time zone
// machinery (it is on every publish).
std::string FormatTime(absl::Time t) {
  char buffer[kFormattedTimeCapacity];
  return std::string(FormatTimeTo(t, buffer));
}

std::string_view FormatTimeTo(absl::Time t, char (&buffer)[kFormattedTimeCapacity]) {
  // Years 0000-9999 only: 0000-01-01T00:00:00Z up to 10000-01-01T00:00:00Z
  // (excluded). Anything else, the infinite times included (whose Unix
  // seconds are the int64 limits: no arithmetic on them), goes to Abseil.
  constexpr int64_t kYear0 = -62167219200;
  constexpr int64_t kYear10000 = 253402300800;
  const int64_t secs = absl::ToUnixSeconds(t);
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast() || secs < kYear0 || secs >= kYear10000) {
    const std::string text = absl::FormatTime("%E4Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
    const size_t n = std::min(text.size(), sizeof(buffer));
    std::copy_n(text.data(), n, buffer);
    return std::string_view(buffer, n);
  }
  const int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(secs));
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t rem = secs - days * 86400;
  int64_t year;
  unsigned month, day;
  CivilFromDays(days, year, month, day);
  char* p = buffer;
  Put(p, year, 4);
  *p++ = '-';
  Put(p, month, 2);
  *p++ = '-';
  Put(p, day, 2);
  *p++ = 'T';
  Put(p, rem / 3600, 2);
  *p++ = ':';
  Put(p, rem / 60 % 60, 2);
  *p++ = ':';
  Put(p, rem % 60, 2);
  if (nanos > 0) {
    *p++ = '.';
    char* start = p;
    Put(p, nanos, 9);
    while (p > start && p[-1] == '0') --p;
  }
  *p++ = 'Z';
  return std::string_view(buffer, static_cast<size_t>(p - buffer));
}

namespace {
// This thread's scratch buffer for Encode, and whether it is lent out.
struct ThreadScratch {
  rapidjson::StringBuffer buffer;
  bool lent = false;
};
ThreadScratch& ThisThreadScratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}
}  // namespace

ScratchBuffer::ScratchBuffer() {
  ThreadScratch& scratch = ThisThreadScratch();
  borrowed_ = !scratch.lent;
  if (borrowed_) {
    scratch.lent = true;
    buffer_ = &scratch.buffer;
    buffer_->Clear();
  } else {
    buffer_ = new rapidjson::StringBuffer();
  }
}

ScratchBuffer::~ScratchBuffer() {
  if (!borrowed_) {
    delete buffer_;
    return;
  }
  // A large text left a larger buffer still (six bytes per string byte were
  // reserved): give it back to the allocator instead of keeping it per thread.
  if (buffer_->GetSize() > kScratchKeepBytes) *buffer_ = rapidjson::StringBuffer();
  buffer_->Clear();
  ThisThreadScratch().lent = false;
}

absl::StatusOr<absl::Time> ParseTime(std::string_view text) {
  // Fast path for the common form YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM).
  int64_t y, mo, d, h, mi, se;
  if (text.size() >= 20 && Digits(text, 0, 4, y) && text[4] == '-' && Digits(text, 5, 2, mo) && text[7] == '-' &&
      Digits(text, 8, 2, d) && (text[10] == 'T' || text[10] == 't') && Digits(text, 11, 2, h) && text[13] == ':' &&
      Digits(text, 14, 2, mi) && text[16] == ':' && Digits(text, 17, 2, se) && mo >= 1 && mo <= 12 && d >= 1 &&
      h < 24 && mi < 60 && se < 60) {
    static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int64_t max_day = kDaysIn[mo - 1] + (mo == 2 && leap ? 1 : 0);
    size_t pos = 19;
    int64_t nanos = 0;
    bool ok = d <= max_day;
    if (ok && pos < text.size() && text[pos] == '.') {
      size_t start = ++pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
      size_t n = pos - start;
      ok = n >= 1 && n <= 9 && Digits(text, start, n, nanos);
      for (size_t i = n; i < 9; ++i) nanos *= 10;
    }
    int64_t offset = 0;
    if (ok && pos + 1 == text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
      pos += 1;
    } else if (ok && pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-') && text[pos + 3] == ':') {
      int64_t oh = 0, om = 0;
      ok = Digits(text, pos + 1, 2, oh) && Digits(text, pos + 4, 2, om) && oh < 24 && om < 60;
      offset = (text[pos] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
      pos += 6;
    } else {
      ok = false;
    }
    if (ok) {
      int64_t secs = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
                     mi * 60 + se - offset;
      return absl::FromUnixSeconds(secs) + absl::Nanoseconds(nanos);
    }
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err)) {
    // Whole nanoseconds, as FormatTime writes and the fast path reads: digits
    // past the ninth are dropped, so a time reads back the same.
    return absl::UnixEpoch() + absl::Floor(t - absl::UnixEpoch(), absl::Nanoseconds(1));
  }
  return absl::InvalidArgumentError(herald::StrCat("not an RFC 3339 time: \"", text, "\": ", err));
}

namespace {
// The reader ReaderLease hands out on this thread, and whether a parse
// holds it.
struct ThreadReader {
  std::optional<rapidjson::Reader> reader;
  bool in_use = false;
};
thread_local ThreadReader thread_reader;
constexpr size_t kKeepReaderBelow = 64 * 1024;
}  // namespace

ReaderLease::ReaderLease(size_t input_size) : input_size_(input_size) {
  ThreadReader& mine = thread_reader;
  if (mine.in_use) {
    reader_ = &own_.emplace();
    return;
  }
  mine.in_use = true;
  owns_thread_reader_ = true;
  if (!mine.reader.has_value()) mine.reader.emplace();
  reader_ = &*mine.reader;
}

ReaderLease::~ReaderLease() {
  if (!owns_thread_reader_) return;
  ThreadReader& mine = thread_reader;
  // Its stack grew with the input (a long string is read into it).
  if (input_size_ > kKeepReaderBelow) mine.reader.reset();
  mine.in_use = false;
}

absl::Status ParseStatus(const rapidjson::MemoryStream& stream, const rapidjson::ParseResult& result, bool too_deep,
                         bool not_finite, int envelope_levels) {
  const std::string_view text(stream.begin_, stream.size_);
  if (too_deep) {
    return absl::InvalidArgumentError(herald::StrCat(
        "JSON nests deeper than herald::kMaxJsonDepth = ", kMaxJsonDepth, " levels of arrays and objects",
        envelope_levels > 0 ? herald::StrCat(" (not counting its envelope's ", envelope_levels, ")") : std::string(),
        " at offset ", result.Offset()));
  }
  if (not_finite) {
    return absl::InvalidArgumentError(
        herald::StrCat("not valid JSON at offset ", result.Offset(), ": a number too large for a double"));
  }
  if (result.IsError()) {
    const size_t offset = result.Offset();
    const bool nul = offset < text.size() && text[offset] == '\0';
    return absl::InvalidArgumentError(
        herald::StrCat("not valid JSON at offset ", offset, ": ",
                       nul ? "unexpected NUL byte" : rapidjson::GetParseError_En(result.Code())));
  }
  // RapidJSON stops at a NUL byte as at the end of the text: a value followed
  // by a NUL and junk would pass. The whole text must be the value.
  if (stream.Tell() != text.size()) {
    return absl::InvalidArgumentError(herald::StrCat("not valid JSON at offset ", stream.Tell(),
                                                     ": a NUL byte after the value (", text.size() - stream.Tell(),
                                                     " bytes follow it)"));
  }
  return absl::OkStatus();
}

}  // namespace internal

absl::Status Parse(std::string_view text, rapidjson::Document& document, int envelope_levels) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  absl::Status status;
  auto generate = [&](rapidjson::Document& handler) {
    status = ParseSax(stream, handler, envelope_levels);
    return status.ok();
  };
  document.Populate(generate);
  if (!status.ok()) document.SetNull();
  return status;
}

absl::Status Validate(std::string_view text, int envelope_levels) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::BaseReaderHandler<> ignore;
  // Every publish validates its JSON payload: this thread's reader keeps its
  // stack between calls instead of allocating it each time. Texts over
  // kKeepBelow get a reader of their own, so no thread keeps a large stack.
  constexpr size_t kKeepBelow = 16 * 1024;
  thread_local rapidjson::Reader reader;
  thread_local bool in_use = false;
  if (in_use || text.size() > kKeepBelow) return ParseSax(stream, ignore, envelope_levels);
  in_use = true;
  absl::Status status = ParseSax(stream, ignore, envelope_levels, &reader);
  in_use = false;
  return status;
}

std::string_view TrimWhitespace(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r";
  size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

std::string Serialize(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace herald::json
