// IPv4 addresses, CIDR blocks and MAC addresses: parsing, printing and arithmetic.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "planner/config/units.h"

namespace kumo {

struct Ipv4 {
  std::uint32_t value = 0;
  auto operator<=>(const Ipv4&) const = default;
  std::string str() const;
};

struct Cidr {
  Ipv4 network;
  int prefix = 0;
  auto operator<=>(const Cidr&) const = default;

  std::uint32_t mask() const { return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix); }
  Ipv4 first_host() const { return {network.value + 1}; }  // the gateway kumo gives the network
  Ipv4 broadcast() const { return {network.value | ~mask()}; }
  Ipv4 last_host() const { return {broadcast().value - 1}; }
  bool contains(Ipv4 ip) const { return (ip.value & mask()) == network.value; }
  bool overlaps(const Cidr& o) const { return contains(o.network) || o.contains(network); }
  std::string str() const;
  std::string netmask() const;
};

struct Mac {
  std::array<std::uint8_t, 6> bytes{};
  auto operator<=>(const Mac&) const = default;
  std::string str() const;
  bool multicast() const { return (bytes[0] & 1) != 0; }
  Mac plus(std::uint32_t n) const;
};

Parsed<Ipv4> parse_ipv4(const std::string& text);
// Requires the network form (no host bits set) and a prefix between 8 and 30.
Parsed<Cidr> parse_cidr(const std::string& text);
Parsed<Mac> parse_mac(const std::string& text);

}  // namespace kumo
