// kumo hosts, as a function: what each host of the file is and what it can take, from the hosts
// as observed (observe_host_details). Pure; the CLI chooses the view (cli/views/hosts_view.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "planner/desired.h"
#include "planner/host_room.h"
#include "providers/observed.h"

namespace kumo {

// The storage pool kumo keeps the host's volumes in (the host's `pool:`).
struct PoolReport {
  std::string name;
  bool found = false;                    // the host has a pool of that name
  bool active = false;                   // started: its volumes can be used
  std::uint64_t capacity = 0, free = 0;  // bytes (as libvirt last refreshed them)
};

// What placement will still admit on a host: its room for new VMs given every domain there now.
struct AdmitReport {
  double cpu_overcommit = 0, memory_overcommit = 0;  // the host's settings in kumo.yaml
  HostRoom room;  // capacity under them, and every domain's vCPUs and memory now as used
};

struct HostInfo {
  std::string name;
  std::string uri;  // as shown: "(sensitive)" when it came from a sensitive variable, no password
  bool reachable = false;
  bool drain = false;  // hosts.<h>.drain: nothing new goes there, its unpinned VMs move away
  std::string error;   // why not reachable: names the host and what to check
  // The rest only when reachable.
  HostFacts facts;        // versions, KVM and why not, CPU, memory
  std::string virt_type;  // what new VMs get there: kvm | qemu (resolve_virt_type)
  // virt_type: kvm in kumo.yaml on a host without KVM: plan refuses it ("" otherwise).
  std::string virt_type_error;
  PoolReport pool;
  std::vector<std::string> vms;  // this cluster's VMs on the host, by name, sorted
  AdmitReport admit;
};

struct HostsReport {
  std::string cluster;
  std::vector<HostInfo> hosts;  // in the file's order
  bool all_reachable() const;
};

// `observed`: the file's hosts as observed, matched by name (a host missing from it is reported
// unreachable).
HostsReport hosts_report(const DesiredCluster& desired, const std::vector<ObservedHost>& observed);

}  // namespace kumo
