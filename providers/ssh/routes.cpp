#include "providers/ssh/routes.h"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

namespace kumo::ssh {
namespace {

// /proc/net/route writes each address as the hex of its 32 bits in memory order: on x86
// (little endian) 0100140A is 10.20.0.1. ntohl(raw) after reading it back gives host order.
bool hex_address(const std::string& s, std::uint32_t& out) {
  if (s.size() != 8) return false;
  std::uint32_t raw = 0;
  for (const char c : s) {
    raw <<= 4;
    if (c >= '0' && c <= '9')
      raw |= static_cast<std::uint32_t>(c - '0');
    else if (c >= 'A' && c <= 'F')
      raw |= static_cast<std::uint32_t>(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f')
      raw |= static_cast<std::uint32_t>(c - 'a' + 10);
    else
      return false;
  }
  out = ntohl(raw);  // raw is the in_addr's s_addr, as the kernel printed it
  return true;
}

}  // namespace

std::vector<Route> parse_proc_net_route(const std::string& text) {
  std::vector<Route> out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dest, gateway, flags, refcnt, use, metric, mask;
    if (!(f >> iface >> dest >> gateway >> flags >> refcnt >> use >> metric >> mask)) continue;
    Route r;
    if (hex_address(dest, r.destination) && hex_address(mask, r.mask)) out.push_back(r);
  }
  return out;
}

std::vector<Route> local_routes() {
  std::ifstream in("/proc/net/route");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_proc_net_route(text.str());
}

bool routed_here(const std::string& ipv4, const std::vector<Route>& routes) {
  in_addr a{};
  if (inet_pton(AF_INET, ipv4.c_str(), &a) != 1) return false;
  const std::uint32_t ip = ntohl(a.s_addr);
  for (const auto& r : routes) {
    if (r.mask != 0 && (ip & r.mask) == (r.destination & r.mask)) return true;
  }
  return false;
}

}  // namespace kumo::ssh
