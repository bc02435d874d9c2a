// Whether this machine routes an address somewhere other than its default route: the test for
// "the VM's network is right here" (a local libvirtd's NAT bridge). Read from the kernel's
// routing table (/proc/net/route); no packet is sent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kumo::ssh {

struct Route {
  std::uint32_t destination = 0, mask = 0;  // host byte order
};

// The routes of /proc/net/route's text (destination and mask in the kernel's hex, little endian).
std::vector<Route> parse_proc_net_route(const std::string& text);

// This machine's IPv4 routes (empty when /proc/net/route cannot be read).
std::vector<Route> local_routes();

// An IPv4 address some route other than a default one covers.
bool routed_here(const std::string& ipv4, const std::vector<Route>& routes);

}  // namespace kumo::ssh
