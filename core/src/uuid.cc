#include "herald/core/uuid.h"

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/random/random.h"

namespace herald {
namespace {

// Process-wide state for monotonic ids: the last (ms << 12 | counter).
std::atomic<uint64_t> last_stamp{0};

uint64_t NextStamp(uint64_t ms) {
  uint64_t candidate = ms << 12;
  uint64_t previous = last_stamp.load(std::memory_order_relaxed);
  while (true) {
    uint64_t next = candidate > previous ? candidate : previous + 1;
    if (last_stamp.compare_exchange_weak(previous, next, std::memory_order_relaxed)) return next;
  }
}

}  // namespace

std::string NewUuidV7(absl::Time now) {
  int64_t ms = absl::ToUnixMillis(now);
  if (ms < 0) ms = 0;
  uint64_t stamp = NextStamp(static_cast<uint64_t>(ms) & ((uint64_t{1} << 48) - 1));
  uint64_t unix_ms = stamp >> 12;
  uint64_t counter = stamp & 0xfff;
  thread_local absl::BitGen gen;
  uint64_t rand_b = absl::Uniform<uint64_t>(gen);

  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(unix_ms >> (8 * (5 - i)));
  b[6] = static_cast<uint8_t>(0x70 | ((counter >> 8) & 0x0f));
  b[7] = static_cast<uint8_t>(counter & 0xff);
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<uint8_t>(rand_b >> (8 * (7 - i)));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));

  static constexpr char kHex[] = "0123456789abcdef";
  char out[36];
  int o = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 0x0f];
  }
  return std::string(out, sizeof(out));
}

bool IsUuidV7(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  char variant = id[19];
  return id[14] == '7' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

}  // namespace herald
