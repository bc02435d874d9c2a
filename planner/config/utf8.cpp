#include "planner/config/utf8.h"

namespace kumo {
namespace {

// The length of the well-formed sequence at `p` (RFC 3629's table), 0 if there is none.
std::size_t sequence_length(std::string_view s, std::size_t p) {
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return i < s.size() && at(i) >= lo && at(i) <= hi;
  };
  const unsigned c = at(p);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(p + 1) ? 2 : 0;
  if (c == 0xE0) return cont(p + 1, 0xA0) && cont(p + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(p + 1) && cont(p + 2) ? 3 : 0;
  if (c == 0xED) return cont(p + 1, 0x80, 0x9F) && cont(p + 2) ? 3 : 0;  // no surrogates
  if (c == 0xF0) return cont(p + 1, 0x90) && cont(p + 2) && cont(p + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(p + 1) && cont(p + 2) && cont(p + 3) ? 4 : 0;
  if (c == 0xF4) return cont(p + 1, 0x80, 0x8F) && cont(p + 2) && cont(p + 3) ? 4 : 0;
  return 0;
}

}  // namespace

std::optional<Utf8Error> first_invalid_utf8(std::string_view text) {
  Utf8Error where;
  for (std::size_t p = 0; p < text.size();) {
    const std::size_t n = sequence_length(text, p);
    if (n == 0) {
      where.offset = p;
      return where;
    }
    if (text[p] == '\n') {
      ++where.line;
      where.column = 1;
    } else {
      ++where.column;
    }
    p += n;
  }
  return std::nullopt;
}

}  // namespace kumo
