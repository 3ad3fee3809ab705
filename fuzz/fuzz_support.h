// fuzz/fuzz_support.h: what herald's libFuzzer targets share.
//
// A record input is written like an HTTP message, so seed files stay
// readable and the fuzzer can reach every part:
//
//   content-type: application/json      <- header lines "name: value"
//   ce_id: 1
//                                        <- an empty line ends the headers
//   the-key                              <- the key line
//   {"id":"1","type":"x","payload":{}}   <- the value: every byte to the end
//
// An input with no empty line is all value (no headers, empty key); one that
// starts with "\n" has no headers.
#ifndef HERALD_FUZZ_FUZZ_SUPPORT_H_
#define HERALD_FUZZ_FUZZ_SUPPORT_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "herald/core/envelope.h"

namespace herald::fuzz {

struct RecordInput {
  Headers headers;
  std::string key;
  std::string_view value;
};

inline RecordInput SplitRecord(std::string_view input) {
  RecordInput r;
  size_t end = input.find("\n\n");
  if (!input.empty() && input.front() == '\n') {
    end = 0;
  } else if (end == std::string_view::npos) {
    r.value = input;
    return r;
  } else {
    std::string_view head = input.substr(0, end);
    while (!head.empty()) {
      size_t nl = head.find('\n');
      std::string_view line = head.substr(0, nl);
      head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
      size_t colon = line.find(": ");
      if (colon == std::string_view::npos) {
        r.headers.emplace_back(std::string(line), "");
      } else {
        r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
      }
    }
    end += 1;  // the first '\n' of the blank line
  }
  std::string_view rest = input.substr(end + 1);
  size_t nl = rest.find('\n');
  r.key = std::string(rest.substr(0, nl));
  r.value = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return r;
}

// A broken property: print what and abort, which libFuzzer reports as a
// crash and saves the input.
[[noreturn]] inline void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "herald fuzz property broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// Outside input may only ever fail as kInvalidArgument.
inline void CheckRejection(const absl::Status& status, const char* what) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) {
    Fail(what, std::string(status.ToString()));
  }
}

}  // namespace herald::fuzz

#endif  // HERALD_FUZZ_FUZZ_SUPPORT_H_
