// The Provider backed by libvirt. Safe to share between threads: each observe() opens its own
// connection and keeps no state between calls.
//
// observe() reads a host with bulk calls, so its cost grows by one call per object:
//   api_calls = 18 + D + N + P + A + V
// D domains, N networks, P storage pools (of which A active), V volumes in the active pools
// other than serial logs and seeds (such a volume in a directory pool is known from the list:
// no XML call).
// The 18: open + keepalive; 6 node calls (info, free memory, capabilities, hostname, version,
// q35's domain capabilities);
// 2 pool lists (all, active); 4 network lists (all, autostart, active, transient); 3 domain
// lists (all, autostart, transient) and one state-stats call for every domain. Each object then
// costs one XML call, each active pool one volume list. A domain defined between the domain list
// and the stats call costs one more (its state is asked for alone). Calls that only read a handle
// (virDomainGetName...) or release one (virDomainFree...) never reach the host: not counted.
// observe_details() makes 3 calls more (the driver's name and version, KVM's domain capabilities).
#pragma once

#include <memory>

#include "providers/provider.h"

namespace kumo {

std::unique_ptr<Provider> make_libvirt_provider();

}  // namespace kumo
