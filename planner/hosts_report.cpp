#include "planner/hosts_report.h"

#include <algorithm>

#include "planner/planner.h"
#include "providers/redact.h"

namespace kumo {
namespace {

PoolReport pool_report(const std::string& name, const ObservedHost& o) {
  PoolReport r;
  r.name = name;
  for (const auto& p : o.pools) {
    if (p.name != name) continue;
    r.found = true;
    r.active = p.active;
    r.capacity = p.capacity;
    r.free = p.available;
  }
  return r;
}

// Placement's accounting (host_room.h), with every domain counted at its size now: this
// cluster's VMs too, which plan counts at the file's sizes (the same, once applied).
AdmitReport admit_report(const DesiredHost& h, const ObservedHost& o) {
  AdmitReport r;
  r.cpu_overcommit = h.cpu_overcommit;
  r.memory_overcommit = h.memory_overcommit;
  r.room = empty_room(h, o.facts);
  for (const auto& d : o.domains) r.room.add(d.vcpus, d.memory);
  return r;
}

HostInfo host_info(const DesiredCluster& desired, const DesiredHost& h, const ObservedHost* o) {
  HostInfo info;
  info.name = h.name;
  info.uri = h.sensitive.show("uri", redact_host_uri(h.uri));
  info.drain = h.drain;
  if (!o || !o->reachable) {
    info.error = o ? o->error : "host " + h.name + " was not observed";
    return info;
  }
  info.reachable = true;
  info.facts = o->facts;
  info.virt_type = resolve_virt_type(h.virt_type, o->facts);
  if (h.virt_type == VirtType::Kvm && !o->facts.kvm)
    info.virt_type_error =
        "virt_type: kvm in kumo.yaml, but the host offers no KVM: plan "
        "refuses it (use virt_type: auto or qemu)";
  info.pool = pool_report(h.pool, *o);
  for (const auto& d : o->domains) {
    if (is_cluster_vm(d, desired.cluster)) info.vms.push_back(d.name);
  }
  std::sort(info.vms.begin(), info.vms.end());
  info.admit = admit_report(h, *o);
  return info;
}

}  // namespace

bool HostsReport::all_reachable() const {
  return std::all_of(hosts.begin(), hosts.end(), [](const HostInfo& h) { return h.reachable; });
}

HostsReport hosts_report(const DesiredCluster& desired, const std::vector<ObservedHost>& observed) {
  HostsReport report;
  report.cluster = desired.cluster;
  for (const auto& h : desired.hosts) {
    const auto it = std::find_if(observed.begin(), observed.end(),
                                 [&](const ObservedHost& o) { return o.host == h.name; });
    report.hosts.push_back(host_info(desired, h, it == observed.end() ? nullptr : &*it));
  }
  return report;
}

}  // namespace kumo
