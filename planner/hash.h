// SHA-256 of text, as lowercase hex. The one place kumo's planner uses OpenSSL.
#pragma once

#include <string>
#include <string_view>

namespace kumo {

std::string sha256_hex(std::string_view data);

}  // namespace kumo
