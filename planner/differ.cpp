#include "planner/differ.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "planner/differ_internal.h"
#include "providers/digest.h"
#include "providers/ownership.h"
#include "providers/read_scope.h"

namespace kumo {
namespace differ {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::vector<std::string> nics_text(const std::vector<NicRecord>& nics) {
  std::vector<std::string> out;
  for (const auto& n : nics) {
    std::string line = !n.bridge.empty()   ? "bridge " + n.bridge
                       : !n.direct.empty() ? "direct " + n.direct + " (" + n.mode + ")"
                                           : n.network;
    line += (n.ip.empty() ? "" : " " + n.ip) + " " + n.mac;
    if (!n.model.empty()) line += " model " + n.model;
    if (n.queues != 0) line += " queues " + std::to_string(n.queues);
    out.push_back(line);
  }
  return out;
}

namespace {

// An owner's address as kumo wrote it; one it cannot read is kept whole as a name of `kind`.
Address owned_address(const Ownership& owner, ResourceKind kind) {
  if (auto a = Address::parse(owner.address)) return *a;
  return Address{kind, owner.address, ""};
}

// The kumo.yaml key an attribute of a VM (or of one of its volumes) shows.
std::string vm_field(const ResourceChange& c, const AttributeChange& a) {
  if (c.kind() == ResourceKind::Volume) {
    switch (c.address.role()) {
      case VolumeRole::Root:
        return "disk";
      case VolumeRole::Data:
        return "disks";
      case VolumeRole::Seed:
        return "cloud_init";
      case VolumeRole::Other:
        break;
    }
  }
  if (a.name == "user_data") return "cloud_init";
  if (a.name == "prevent_destroy") return "lifecycle";
  return a.name.substr(0, a.name.find('.'));  // disks.data -> disks
}

// The kumo.yaml key a network attribute shows ("address" and the default DHCP range come from
// the cidr).
std::vector<std::string> network_fields(const AttributeChange& a) {
  if (a.name == "address") return {"cidr"};
  if (a.name == "dhcp") return {"dhcp", "cidr"};
  return {a.name};
}

// Attributes whose values came from sensitive variables carry the mark the views mask by.
void mark_vm(std::vector<ResourceChange>& changes, std::size_t from, const DesiredVm& vm) {
  for (std::size_t i = from; i < changes.size(); ++i) {
    for (auto& a : changes[i].attributes) {
      // Documents carry their own masks, value by value: never masked whole.
      if (!a.document && vm.sensitive.has(vm_field(changes[i], a))) a.sensitive = true;
    }
  }
}

void mark_network(std::vector<ResourceChange>& changes, std::size_t from,
                  const DesiredNetwork& net) {
  for (std::size_t i = from; i < changes.size(); ++i) {
    for (auto& a : changes[i].attributes) {
      for (const auto& f : network_fields(a)) a.sensitive = a.sensitive || net.sensitive.has(f);
    }
  }
}

}  // namespace

Differ::Differ(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
               const std::vector<std::string>& replace)
    : desired_(desired), replace_requested_(replace.begin(), replace.end()) {
  for (const auto& h : observed) {
    if (!h.reachable) continue;
    HostIndex idx;
    idx.host = &h;
    const DesiredHost* dh = desired.find_host(h.host);
    const std::string pool = dh ? dh->pool : "default";
    for (const auto& d : h.domains) idx.domains[d.name] = &d;
    for (const auto& n : h.networks) idx.networks[n.name] = &n;
    idx.pool = pool;
    for (const auto& v : h.volumes) {
      if (v.pool == pool) idx.volumes[v.name] = &v;
    }
    // This cluster's volumes in other pools: only in pools the file has kumo make or puts data
    // disks in, or attached to this cluster's domains. A copy of a kumo volume kept elsewhere
    // (a backup pool) is nobody's business here.
    std::set<std::string> pools_used, attached;
    if (dh) {
      for (const auto& p : dh->pools) pools_used.insert(p.spec.name);
    }
    for (const auto& vm : desired.vms) {
      if (vm.host != h.host) continue;
      for (const auto& disk : vm.data_disks)
        if (!disk.pool.empty()) pools_used.insert(disk.pool);
    }
    for (const auto& d : h.domains) {
      if (!ours(d.owner)) continue;
      for (const auto& disk : d.disks) attached.insert(disk.path);
    }
    for (const auto& v : h.volumes) {
      if (v.pool == pool || !ours(v.owner)) continue;
      if (pools_used.count(v.pool) || attached.count(v.path)) idx.volumes.try_emplace(v.name, &v);
    }
    for (const auto& [name, v] : idx.volumes) {
      if (!ours(v->owner)) continue;
      if (const std::string instance = volume_instance(v->owner->address); !instance.empty())
        idx.instance_volumes[instance].push_back(v);
    }
    idx.network_records = network_records(h.volumes, pool, desired.cluster);
    hosts_[h.host] = std::move(idx);
    for (const auto& d : h.domains) {
      if (ours(d.owner)) living_instances_.insert(owned_address(*d.owner, ResourceKind::Vm).name);
    }
  }
}

DiffResult Differ::run() {
  for (const auto& net : desired_.networks) {
    const auto from = result_.changes.size();
    diff_network(net);
    mark_network(result_.changes, from, net);
  }
  diff_pools();
  for (const auto& vm : desired_.vms) {
    if (vm.host.empty()) continue;
    check_vm_pools(vm);
    const auto from = result_.changes.size();
    diff_vm(vm);
    mark_vm(result_.changes, from, vm);
  }
  find_orphans();
  pool_orphans();
  // Deletes go last, in reverse dependency order: VMs and their volumes before networks, pools
  // last of all.
  std::stable_partition(deletes_.begin(), deletes_.end(), [](const ResourceChange& c) {
    return c.kind() != ResourceKind::Network && c.kind() != ResourceKind::Pool;
  });
  std::stable_partition(deletes_.begin(), deletes_.end(),
                        [](const ResourceChange& c) { return c.kind() != ResourceKind::Pool; });
  for (auto& d : deletes_) result_.changes.push_back(std::move(d));
  return std::move(result_);
}

std::vector<std::string> Differ::running_vms_on(const HostIndex& idx,
                                                const std::string& libvirt_network) const {
  std::vector<std::string> out;
  for (const auto& [name, d] : idx.domains) {
    if (!d->active) continue;
    for (const auto& nic : d->nics) {
      if (nic.type == "network" && nic.network == libvirt_network) {
        out.push_back(name);
        break;
      }
    }
  }
  return out;
}

void Differ::delete_vm(const HostIndex& idx, const ObservedDomain& d, const std::string& reason,
                       bool moved, bool spare) {
  ResourceChange c;
  c.address = owned_address(*d.owner, ResourceKind::Vm);
  c.host = idx.host->host;
  if (moved) c.parent = c.address;  // the old copy of a moved VM is part of its replacement
  c.action = Action::Delete;
  c.reason = reason;
  c.observed = ObservedRef{d.name, d.uuid, "", d.state, 0};
  deleted_domains_.insert(c.host + "/" + d.name);
  if (d.owner->spec && !d.owner->spec->adopted.empty()) {
    c.reason += "; adopted: its " + std::to_string(d.owner->spec->volumes.size()) +
                " disk(s) are kept, kumo did not make them";
  }
  if (d.owner->spec && d.owner->spec->prevent_destroy) {
    result_.errors.error({},
                         "host " + quote(c.host) + ": " + c.address.str() +
                             " has lifecycle.prevent_destroy; set "
                             "prevent_destroy: false and apply before removing it from the file");
  }
  const std::string prefix = "volume." + c.address.name + "/";
  std::vector<ResourceChange> children;
  for (const auto& [name, v] : idx.volumes) {
    if (!ours(v->owner) || v->owner->address.rfind(prefix, 0) != 0) continue;
    // The serial log goes with the domain, in the VM's own step, listed or not (libvirt lists one
    // kumo made with the VM, and others only once it refreshed the pool): the plan reads the same.
    if (is_serial_log(v->name)) {
      claimed_volumes_.insert(c.host + "/" + v->name);
      continue;
    }
    ResourceChange ch;
    ch.address = owned_address(*v->owner, ResourceKind::Volume);
    ch.host = c.host;
    ch.parent = c.address;
    ch.action = Action::Delete;
    ch.observed = ObservedRef{v->name, "", "", "", v->capacity, pool_of(idx, *v)};
    ch.destroys_data = ch.address.role() == VolumeRole::Data && !spare;
    c.destroys_data = c.destroys_data || ch.destroys_data;
    children.push_back(ch);
    claimed_volumes_.insert(c.host + "/" + v->name);
  }
  deletes_.push_back(std::move(c));
  for (auto& ch : children) deletes_.push_back(std::move(ch));
}

void Differ::delete_network(const HostIndex& idx, const ObservedNetwork& n) {
  ResourceChange c;
  c.address = owned_address(*n.owner, ResourceKind::Network);
  c.host = idx.host->host;
  c.action = Action::Delete;
  c.observed = ObservedRef{n.name, n.uuid, "", n.active ? "active" : "inactive", 0};
  auto users = running_vms_on(idx, n.name);
  // VMs deleted by the same plan lose nothing they keep.
  std::erase_if(
      users, [&](const std::string& vm) { return deleted_domains_.count(c.host + "/" + vm) > 0; });
  c.reason = users.empty() ? "no longer in " + desired_.file
                           : "running VMs lose connectivity: " + join(users);
  c.disruption = users.empty() ? Disruption::None : Disruption::Restart;
  deletes_.push_back(std::move(c));
}

void Differ::delete_stale_record(const HostIndex& idx, const NetworkRecord& r) {
  ResourceChange c;
  c.address = Address::network(r.network);
  c.host = idx.host->host;
  c.action = Action::Delete;
  c.observed =
      ObservedRef{network_name(desired_.cluster, r.network), r.uuid, "", kStaleNetworkRecord, 0};
  c.reason = "left over: kumo's record of a network that was never made (UUID " + r.uuid +
             "; an apply stopped in between)";
  deletes_.push_back(std::move(c));
}

void Differ::delete_volume(const HostIndex& idx, const ObservedVolume& v) {
  ResourceChange c;
  c.address = owned_address(*v.owner, ResourceKind::Volume);
  c.host = idx.host->host;
  c.action = Action::Delete;
  c.destroys_data = c.address.role() == VolumeRole::Data;
  c.observed = ObservedRef{v.name, "", "", "", v.capacity, pool_of(idx, v)};
  c.reason = "left over: no VM of this cluster uses it";
  if (living_instances_.count(c.address.parent)) {
    // The VM lives on another host (an interrupted move): its data is there.
    c.destroys_data = false;
    c.reason = "left over from a move: vm." + c.address.parent + " lives on another host";
  }
  deletes_.push_back(std::move(c));
}

void Differ::find_orphans() {
  std::set<std::string> wanted_vms, wanted_networks;  // host/address
  std::set<std::string> desired_instances;
  for (const auto& vm : desired_.vms) {
    if (!vm.host.empty()) wanted_vms.insert(vm.host + "/" + vm.address());
    desired_instances.insert(vm.instance);
  }
  for (const auto& n : desired_.networks) wanted_networks.insert(n.host + "/" + n.libvirt_name);
  for (const auto& [host, idx] : hosts_) {
    for (const auto& [name, d] : idx.domains) {
      if (!ours(d->owner) || wanted_vms.count(host + "/" + d->owner->address)) continue;
      if (moving_sources_.count(host + "/" + name)) continue;  // its move removes it
      const Address a = owned_address(*d->owner, ResourceKind::Vm);
      if (spare_copies_.count(host + "/" + name)) {
        delete_vm(idx, *d, "left over from a move: the VM lives on another host, with its data",
                  false, true);
      } else if (desired_instances.count(a.name)) {
        // Made anew on its new host (a replace); remove the old copy.
        delete_vm(idx, *d, "the old copy of a VM moved to another host", true);
      } else {
        delete_vm(idx, *d, "no longer in " + desired_.file);
      }
    }
    for (const auto& [name, n] : idx.networks) {
      if (ours(idx, *n) && !wanted_networks.count(host + "/" + name)) delete_network(idx, *n);
    }
    // Records of networks that are not there: an apply killed between recording and defining.
    std::set<std::string> uuids;
    for (const auto& [name, n] : idx.networks) uuids.insert(n->uuid);
    for (const auto& r : idx.network_records) {
      if (!uuids.count(r.uuid)) delete_stale_record(idx, r);
    }
    // Volumes no domain accounts for: left by an interrupted apply or a removed VM.
    for (const auto& [name, v] : idx.volumes) {
      if (!ours(v->owner) || claimed_volumes_.count(host + "/" + name)) continue;
      const Address a = owned_address(*v->owner, ResourceKind::Volume);
      if (wanted_vms.count(host + "/vm." + a.parent)) continue;  // handled with its VM
      delete_volume(idx, *v);
    }
  }
}

}  // namespace differ

DiffResult diff(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                const std::vector<std::string>& replace) {
  return differ::Differ(desired, observed, replace).run();
}

std::string fingerprint(const std::vector<ObservedHost>& observed) {
  using json = nlohmann::json;
  // Each object one line of JSON (JSON escapes newlines, so lines frame it), each kind's lines
  // sorted: the order hosts list objects in is no change, the fingerprint is the state's. Lines,
  // not one document: thousands of objects are sorted as strings, not as JSON values.
  Hasher hash(ChecksumAlgo::Sha256);
  auto section = [&](const char* kind, std::vector<std::string>& lines) {
    std::sort(lines.begin(), lines.end());
    hash.update(kind);
    hash.update("\n");
    for (const auto& l : lines) {
      hash.update(l);
      hash.update("\n");
    }
  };
  for (const auto& h : observed) {
    hash.update(json::array({"host", h.host, h.reachable}).dump());
    hash.update("\n");
    std::vector<std::string> domains, networks, volumes;
    domains.reserve(h.domains.size());
    for (const auto& d : h.domains) {
      domains.push_back(json::array({d.name, d.uuid, d.state, d.vcpus, d.memory, d.autostart,
                                     d.owner ? d.owner->spec_hash : std::string()})
                            .dump());
    }
    for (const auto& n : h.networks) {
      json dhcp = json::array();
      for (const auto& e : n.dhcp_hosts) dhcp.push_back(e.mac + e.ip + e.name);
      for (const auto& e : n.dns_hosts) dhcp.push_back(e.ip + " " + json(e.names).dump());
      networks.push_back(json::array({n.name, n.uuid, n.active, n.autostart, dhcp}).dump());
    }
    volumes.reserve(h.volumes.size());
    for (const auto& v : h.volumes) {
      // A lock comes and goes with every apply; a plan saved meanwhile is not stale for it.
      if (!is_lock_volume(v.name))
        volumes.push_back(json::array({v.pool, v.name, v.capacity}).dump());
    }
    section("domains", domains);
    section("networks", networks);
    section("volumes", volumes);
  }
  return "sha256:" + hash.hex();
}

std::vector<ResourceChange> filter_targets(const std::vector<ResourceChange>& changes,
                                           const DesiredCluster& desired,
                                           const std::vector<std::string>& targets) {
  std::set<std::string> keep(targets.begin(), targets.end());
  for (const auto& vm : desired.vms) {
    if (!keep.count(vm.address())) continue;
    for (const auto& nic : vm.nics)  // what it depends on
      if (!nic.network.empty()) keep.insert("network." + nic.network);
    if (const DesiredHost* h = desired.find_host(vm.host)) {  // and the pools it needs made
      keep.insert("pool." + vm.host + "/" + h->pool);
      for (const auto& d : vm.data_disks)
        if (!d.pool.empty()) keep.insert("pool." + vm.host + "/" + d.pool);
    }
  }
  std::vector<ResourceChange> out;
  for (const auto& c : changes) {
    if (keep.count(c.address.str()) || (c.parent && keep.count(c.parent->str()))) out.push_back(c);
  }
  return out;
}

}  // namespace kumo
