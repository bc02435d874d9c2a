#include "planner/config/netaddr.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace kumo {

std::string Ipv4::str() const {
  return std::to_string(value >> 24) + "." + std::to_string((value >> 16) & 255) + "." +
         std::to_string((value >> 8) & 255) + "." + std::to_string(value & 255);
}

std::string Cidr::str() const {
  return network.str() + "/" + std::to_string(prefix);
}

std::string Cidr::netmask() const {
  return Ipv4{mask()}.str();
}

std::string Mac::str() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

Mac Mac::plus(std::uint32_t n) const {
  Mac out = *this;
  std::uint64_t low = (std::uint64_t{bytes[3]} << 16) | (std::uint64_t{bytes[4]} << 8) | bytes[5];
  low = (low + n) & 0xffffff;
  out.bytes[3] = static_cast<std::uint8_t>(low >> 16);
  out.bytes[4] = static_cast<std::uint8_t>(low >> 8);
  out.bytes[5] = static_cast<std::uint8_t>(low);
  return out;
}

Parsed<Ipv4> parse_ipv4(const std::string& text) {
  const std::string bad =
      "\"" + text + "\" is not an IPv4 address" +
      std::string(text.find(':') != std::string::npos ? " (IPv6 is not supported yet)" : "");
  std::uint32_t value = 0;
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != '.') return bad;
      ++i;
    }
    size_t start = i;
    unsigned n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && i - start < 4) {
      n = n * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    if (i == start || n > 255 || (i - start > 1 && text[start] == '0')) return bad;
    value = (value << 8) | n;
  }
  if (i != text.size()) return bad;
  return Ipv4{value};
}

Parsed<Cidr> parse_cidr(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) {
    return "\"" + text + "\" is not a CIDR block (write e.g. 10.10.0.0/24)";
  }
  auto ip = parse_ipv4(text.substr(0, slash));
  if (auto* err = std::get_if<ParseError>(&ip)) return "invalid CIDR " + text + ": " + err->message;
  const std::string p = text.substr(slash + 1);
  const bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) {
    return std::isdigit(static_cast<unsigned char>(ch));
  });
  if (!digits) return "invalid CIDR " + text + ": prefix \"" + p + "\" is not a number";
  Cidr c{std::get<Ipv4>(ip), p.size() > 2 ? 99 : std::stoi(p)};
  if (c.prefix < 8 || c.prefix > 30) {
    return "invalid CIDR " + text + ": prefix must be between /8 and /30";
  }
  if ((c.network.value & ~c.mask()) != 0) {
    Cidr fixed{{c.network.value & c.mask()}, c.prefix};
    return "invalid CIDR " + text + ": host bits are set (did you mean " + fixed.str() + "?)";
  }
  return c;
}

Parsed<Mac> parse_mac(const std::string& text) {
  const std::string bad =
      "\"" + text + "\" is not a MAC address (write six hex pairs, e.g. 52:54:00:12:34:56)";
  if (text.size() != 17) return bad;
  Mac m;
  for (int i = 0; i < 6; ++i) {
    const char a = text[i * 3], b = text[i * 3 + 1];
    if (!std::isxdigit(static_cast<unsigned char>(a)) ||
        !std::isxdigit(static_cast<unsigned char>(b))) {
      return bad;
    }
    if (i < 5 && text[i * 3 + 2] != ':') return bad;
    m.bytes[i] = static_cast<std::uint8_t>(std::stoi(text.substr(i * 3, 2), nullptr, 16));
  }
  if (m.multicast()) return "MAC " + text + " is a multicast address (the first byte must be even)";
  return m;
}

}  // namespace kumo
