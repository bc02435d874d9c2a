// Is this text UTF-8? kumo reads only UTF-8 files: anything else is refused where it starts.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace kumo {

struct Utf8Error {
  std::size_t offset = 0;  // of the first byte that is no UTF-8
  int line = 1, column = 1;
};

// The first byte that does not belong to well-formed UTF-8 (overlong forms, surrogates and
// code points past U+10FFFF included), or nullopt.
std::optional<Utf8Error> first_invalid_utf8(std::string_view text);

}  // namespace kumo
