#include "herald/postgres/redact.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

namespace herald::postgres {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

bool IsSecretKeyword(std::string_view key) { return key == "password" || key == "sslpassword"; }

// Where a secret value sits in the connection string: [begin, end).
struct Span {
  size_t begin;
  size_t end;
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsUri(std::string_view s) { return s.substr(0, 13) == "postgresql://" || s.substr(0, 11) == "postgres://"; }

// The secret values of a URI: user:PASSWORD@ in the authority, and
// password= / sslpassword= among the query parameters.
std::vector<Span> UriSecrets(std::string_view s) {
  std::vector<Span> spans;
  const size_t start = s.find("://") + 3;
  const size_t authority_end = std::min(s.find_first_of("/?", start), s.size());
  // The last '@' of the authority ends the user info (a password may hold
  // an unencoded '@' that libpq would reject; hide up to the last one).
  const size_t at = s.substr(0, authority_end).rfind('@');
  if (at != std::string_view::npos && at >= start) {
    const size_t colon = s.substr(0, at).find(':', start);
    if (colon != std::string_view::npos) spans.push_back({colon + 1, at});
  }
  const size_t query = s.find('?', start);
  if (query == std::string_view::npos) return spans;
  size_t pos = query + 1;
  while (pos <= s.size()) {
    size_t end = std::min(s.find('&', pos), s.size());
    const std::string_view pair = s.substr(pos, end - pos);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && IsSecretKeyword(PercentDecoded(pair.substr(0, eq)))) {
      spans.push_back({pos + eq + 1, end});
    }
    pos = end + 1;
  }
  return spans;
}

// The secret values of a key=value string, scanned as libpq does
// (conninfo_parse): key, optional spaces, '=', optional spaces, then a
// single-quoted value with \ escapes or a bare one up to whitespace.
std::vector<Span> KeywordSecrets(std::string_view s) {
  std::vector<Span> spans;
  size_t i = 0;
  auto space = [&](size_t j) { return j < s.size() && std::isspace(static_cast<unsigned char>(s[j])); };
  while (i < s.size()) {
    while (space(i)) ++i;
    const size_t key_begin = i;
    while (i < s.size() && s[i] != '=' && !space(i)) ++i;
    const std::string_view key = s.substr(key_begin, i - key_begin);
    while (space(i)) ++i;
    if (i >= s.size() || s[i] != '=') {
      // Not key=value: libpq refuses it; skip the word.
      if (i == key_begin) ++i;
      continue;
    }
    ++i;  // '='
    while (space(i)) ++i;
    const size_t value_begin = i;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
      if (i < s.size()) ++i;  // closing quote
    } else {
      while (i < s.size() && !space(i)) i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
    }
    if (IsSecretKeyword(key)) spans.push_back({value_begin, std::min(i, s.size())});
  }
  return spans;
}

std::vector<Span> SecretSpans(std::string_view conninfo) {
  return IsUri(conninfo) ? UriSecrets(conninfo) : KeywordSecrets(conninfo);
}

// A key=value value as libpq reads it: quotes dropped, escapes resolved.
std::string Unescaped(std::string_view raw) {
  if (!raw.empty() && raw.front() == '\'') {
    raw.remove_prefix(1);
    if (!raw.empty() && raw.back() == '\'') raw.remove_suffix(1);
  }
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    out += raw[i];
  }
  return out;
}

void ReplaceAll(std::string& text, std::string_view secret) {
  if (secret.empty()) return;
  for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + kRedacted.size())) {
    text.replace(pos, secret.size(), kRedacted);
  }
}

}  // namespace

std::string RedactConnectionString(std::string_view conninfo) {
  std::vector<Span> spans = SecretSpans(conninfo);
  std::string out(conninfo);
  // From the back, so earlier positions stay valid.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin > b.begin; });
  for (const Span& span : spans) {
    if (span.end > span.begin) out.replace(span.begin, span.end - span.begin, kRedacted);
  }
  // Whatever libpq itself reads as a secret (a form the scanner above does
  // not know) goes too.
  for (const std::string& secret : ConnectionStringSecrets(conninfo)) ReplaceAll(out, secret);
  return out;
}

std::vector<std::string> ConnectionStringSecrets(std::string_view conninfo) {
  std::vector<std::string> secrets;
  auto add = [&secrets](std::string secret) {
    if (!secret.empty() && secret != kRedacted && std::find(secrets.begin(), secrets.end(), secret) == secrets.end()) {
      secrets.push_back(std::move(secret));
    }
  };
  const bool uri = IsUri(conninfo);
  for (const Span& span : SecretSpans(conninfo)) {
    const std::string_view raw = conninfo.substr(span.begin, span.end - span.begin);
    add(std::string(raw));
    add(uri ? PercentDecoded(raw) : Unescaped(raw));
    if (!uri) add(std::string(Unescaped(raw)));
  }
  const std::string text(conninfo);
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(text.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options != nullptr) {
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (IsSecretKeyword(o->keyword) && o->val != nullptr) add(o->val);
    }
    PQconninfoFree(options);
  }
  // Longest first: a secret that contains another is replaced whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return secrets;
}

std::string RedactConnectionSecrets(std::string_view conninfo, std::string_view text) {
  std::string out(text);
  for (const std::string& secret : ConnectionStringSecrets(conninfo)) ReplaceAll(out, secret);
  return out;
}

}  // namespace herald::postgres
