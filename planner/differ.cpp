#include "planner/differ.h"

#include <algorithm>
#include <map>
#include <set>

#include "planner/config/units.h"
#include "providers/digest.h"
#include "providers/host_session.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

using json = nlohmann::json;

struct HostIndex {
  const ObservedHost* host = nullptr;
  std::map<std::string, const ObservedDomain*> domains;
  std::map<std::string, const ObservedNetwork*> networks;
  std::map<std::string, const ObservedVolume*> volumes;  // in the host's kumo pool
};

AttributeChange attr(std::string name, json before, json after) {
  AttributeChange a;
  a.name = std::move(name);
  a.before = std::move(before);
  a.after = std::move(after);
  return a;
}

json size_text(std::uint64_t bytes) {
  return format_size(bytes);
}

Disruption worst(Disruption a, Disruption b) {
  return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

class Differ {
 public:
  Differ(const ClusterConfig& cfg, const DesiredCluster& desired,
         const std::vector<ObservedHost>& observed, const std::vector<std::string>& replace)
      : cfg_(cfg), desired_(desired), replace_requested_(replace.begin(), replace.end()) {
    for (const auto& h : observed) {
      if (!h.reachable) continue;
      HostIndex idx;
      idx.host = &h;
      const HostConfig* hc = cfg.find_host(h.host);
      const std::string pool = hc ? hc->pool : "default";
      for (const auto& d : h.domains) idx.domains[d.name] = &d;
      for (const auto& n : h.networks) idx.networks[n.name] = &n;
      for (const auto& v : h.volumes) {
        if (v.pool == pool) idx.volumes[v.name] = &v;
      }
      hosts_[h.host] = idx;
    }
  }

  DiffResult run() {
    for (const auto& net : desired_.networks) diff_network(net);
    for (const auto& vm : desired_.vms) {
      if (!vm.host.empty()) diff_vm(vm);
    }
    find_orphans();
    // Deletes go last, in reverse dependency order: VMs and their volumes before networks.
    std::stable_partition(deletes_.begin(), deletes_.end(),
                          [](const ResourceChange& c) { return c.kind != "network"; });
    for (auto& d : deletes_) result_.changes.push_back(std::move(d));
    return std::move(result_);
  }

 private:
  bool ours(const std::optional<Ownership>& o) const { return o && o->cluster == cfg_.name; }

  std::vector<std::string> running_vms_on(const HostIndex& idx,
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

  static std::string forward_of(NetMode m) {
    switch (m) {
      case NetMode::Nat:
        return "nat";
      case NetMode::Route:
        return "route";
      case NetMode::Bridge:
        return "bridge";
      case NetMode::Isolated:
        return "";
    }
    return "";
  }

  static json network_json(const DesiredNetwork& n) {
    json hosts = json::array();
    for (const auto& h : n.dhcp_hosts)
      hosts.push_back({{"mac", h.mac}, {"ip", h.ip}, {"name", h.name}});
    json dns = json::object();
    for (const auto& [name, ip] : n.dns_hosts) dns[name] = ip;
    return {{"name", n.libvirt_name},
            {"mode", to_string(n.mode)},
            {"address", n.cidr ? n.cidr->first_host().str() : ""},
            {"prefix", n.cidr ? n.cidr->prefix : 0},
            {"dhcp_start", n.dhcp_range ? n.dhcp_range->start.str() : ""},
            {"dhcp_end", n.dhcp_range ? n.dhcp_range->end.str() : ""},
            {"cidr", n.cidr ? n.cidr->str() : ""},
            {"dhcp_range",
             n.dhcp_range ? n.dhcp_range->start.str() + "-" + n.dhcp_range->end.str() : ""},
            {"domain", n.domain.value_or("")},
            {"bridge", n.bridge},
            {"mtu", n.mtu ? json(*n.mtu) : json(nullptr)},
            {"dhcp_hosts", hosts},
            {"dns_hosts", dns}};
  }

  // What the network's DNS serves, as comparable text: one line per <dns><host>.
  static std::set<std::string> dns_lines(const std::vector<ObservedDnsHost>& hosts) {
    std::set<std::string> out;
    for (const auto& h : hosts) {
      std::string line = h.ip;
      for (const auto& n : h.names) line += " " + n;
      out.insert(line);
    }
    return out;
  }
  static std::vector<ObservedDnsHost> desired_dns(const DesiredNetwork& n) {
    NetworkSpec spec;
    spec.domain = n.domain.value_or("");
    for (const auto& h : n.dhcp_hosts) spec.dhcp_hosts.push_back({h.mac, h.ip, h.name});
    for (const auto& [name, ip] : n.dns_hosts) spec.dns_hosts.push_back({ip, {name}});
    return dns_entries(spec);
  }

  void diff_network(const DesiredNetwork& net) {
    auto hit = hosts_.find(net.host);
    if (hit == hosts_.end()) return;  // unreachable, reported elsewhere
    const HostIndex& idx = hit->second;
    ResourceChange c;
    c.address = net.address();
    c.kind = "network";
    c.host = net.host;
    c.desired = network_json(net);
    auto it = idx.networks.find(net.libvirt_name);
    if (it == idx.networks.end()) {
      c.action = Action::Create;
      c.attributes = {
          attr("mode", nullptr, to_string(net.mode)), attr("cidr", nullptr, c.desired["cidr"]),
          attr("dhcp", nullptr, net.dhcp_range ? c.desired["dhcp_range"] : json("off")),
          attr("domain", nullptr, c.desired["domain"]), attr("bridge", nullptr, net.bridge)};
      if (!net.dhcp_hosts.empty())
        c.attributes.push_back(attr("dhcp_hosts", nullptr, c.desired["dhcp_hosts"].size()));
      if (!net.dns_hosts.empty())
        c.attributes.push_back(attr("dns_hosts", nullptr, c.desired["dns_hosts"]));
      std::erase_if(c.attributes,
                    [](const AttributeChange& a) { return a.after == ""; });  // unset: say nothing
      result_.changes.push_back(std::move(c));
      return;
    }
    const ObservedNetwork& o = *it->second;
    c.observed = {{"name", o.name}, {"active", o.active}, {"autostart", o.autostart}};
    auto forces = [&](const std::string& name, json before, json after) {
      if (before == after) return;
      auto a = attr(name, std::move(before), std::move(after));
      a.forces_replacement = true;
      c.attributes.push_back(std::move(a));
    };
    forces("mode", o.forward_mode.empty() ? "isolated" : o.forward_mode,
           net.mode == NetMode::Isolated ? "isolated" : forward_of(net.mode));
    const std::string address_before = o.ip.empty() ? "" : o.ip + "/" + std::to_string(o.prefix);
    const std::string address_after =
        net.cidr ? net.cidr->first_host().str() + "/" + std::to_string(net.cidr->prefix) : "";
    forces("address", address_before, address_after);
    forces("dhcp", o.dhcp_start.empty() ? "off" : o.dhcp_start + "-" + o.dhcp_end,
           net.dhcp_range ? c.desired["dhcp_range"].get<std::string>() : "off");
    forces("domain", o.domain, net.domain.value_or(""));
    forces("bridge", o.bridge, net.bridge);
    forces("mtu", o.mtu ? json(*o.mtu) : json(nullptr), net.mtu ? json(*net.mtu) : json(nullptr));
    if (!c.attributes.empty()) {
      c.action = Action::Replace;
      c.disruption = Disruption::Live;
      const auto users = running_vms_on(idx, o.name);
      c.reason =
          users.empty()
              ? "the network is recreated"
              : "the network is recreated; running VMs lose connectivity meanwhile: " + join(users);
      if (!users.empty()) c.disruption = Disruption::Restart;
      result_.changes.push_back(std::move(c));
      return;
    }
    std::set<std::string> want, have;
    for (const auto& h : net.dhcp_hosts) want.insert(h.mac + " " + h.ip + " " + h.name);
    for (const auto& h : o.dhcp_hosts) have.insert(h.mac + " " + h.ip + " " + h.name);
    if (want != have) {
      json before = json::array(), after = json::array();
      for (const auto& s : have) before.push_back(s);
      for (const auto& s : want) after.push_back(s);
      c.attributes.push_back(attr("dhcp_hosts", before, after));
    }
    const auto dns_want = dns_lines(desired_dns(net)), dns_have = dns_lines(o.dns_hosts);
    if (dns_want != dns_have) {
      json before = json::array(), after = json::array();
      for (const auto& s : dns_have) before.push_back(s);
      for (const auto& s : dns_want) after.push_back(s);
      c.attributes.push_back(attr("dns_hosts", before, after));
    }
    if (!c.attributes.empty()) {
      c.reason = "DHCP/DNS host entries change live; guests keep their connectivity";
      c.disruption = Disruption::Live;
    }
    if (!o.active) c.attributes.push_back(attr("active", false, true));
    if (!o.autostart) c.attributes.push_back(attr("autostart", false, true));
    if (!c.attributes.empty()) {
      c.action = Action::Update;
      result_.changes.push_back(std::move(c));
    }
  }

  const ClusterConfig& cfg_;
  const DesiredCluster& desired_;
  std::map<std::string, HostIndex> hosts_;
  DiffResult result_;
  std::vector<ResourceChange> deletes_;
  std::set<std::string> claimed_volumes_;    // host/volume deleted together with their VM
  std::set<std::string> replace_requested_;  // --replace addresses

  void diff_vm(const DesiredVm& vm);
  void vm_create(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain* moved_from,
                 const std::string& from_host);
  void vm_compare(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d);
  void volumes_for(const DesiredVm& vm, const HostIndex& idx, bool vm_is_new,
                   ResourceChange& parent, std::vector<ResourceChange>& children);
  void find_orphans();
  void delete_vm(const HostIndex& idx, const ObservedDomain& d, const std::string& reason,
                 bool moved = false);
};

json vm_json(const DesiredVm& vm) {
  json j = vm.spec();
  j["spec"] = vm.spec();  // exactly what goes into the domain's metadata
  j["name"] = vm.instance;
  j["group"] = vm.group;
  j["running"] = vm.running;
  j["root_volume"] = vm.root_volume;
  j["seed_volume"] = vm.seed_volume;
  j["prevent_destroy"] = vm.lifecycle.prevent_destroy;
  j["data_disk_volumes"] = json::object();
  for (const auto& d : vm.data_disks) j["data_disk_volumes"][d.name] = d.volume;
  j["libvirt_networks"] = json::array();
  for (const auto& n : vm.nics)
    j["libvirt_networks"].push_back({{"network", n.libvirt_network}, {"bridge", n.bridge}});
  j["spec_hash"] = vm.spec_hash();
  // The executor builds the seed from these; saved plans keep them (and are written 0600).
  j["user_data"] = vm.user_data;
  j["meta_data"] = vm.meta_data;
  j["network_config"] = vm.network_config;
  j["wait_for"] = to_string(vm.wait_for);
  j["wait_timeout_s"] = vm.wait_timeout.count();
  return j;
}

json nics_text(const std::vector<DesiredNic>& nics) {
  json out = json::array();
  for (const auto& n : nics)
    out.push_back(n.network + (n.ip ? " " + n.ip->str() : "") + " " + n.mac);
  return out;
}

json nics_text(const json& spec_nics) {
  json out = json::array();
  for (const auto& n : spec_nics) {
    const std::string ip = n.value("ip", "");
    out.push_back(n.value("network", "") + (ip.empty() ? "" : " " + ip) + " " + n.value("mac", ""));
  }
  return out;
}

void Differ::diff_vm(const DesiredVm& vm) {
  auto hit = hosts_.find(vm.host);
  if (hit == hosts_.end()) return;
  const HostIndex& idx = hit->second;
  auto it = idx.domains.find(vm.instance);
  if (it != idx.domains.end()) {
    const ObservedDomain& d = *it->second;
    if (!d.owner || d.owner->cluster != cfg_.name || d.owner->address != vm.address()) {
      const std::string who =
          !d.owner ? "kumo did not make it"
                   : "it belongs to " + (d.owner->cluster == cfg_.name
                                             ? std::string("this cluster's ") + d.owner->address
                                             : "cluster " + quote(d.owner->cluster));
      result_.errors.error(vm.location,
                           "host " + quote(vm.host) + ": a domain named " + quote(vm.instance) +
                               " already exists and " + who +
                               "; kumo never touches it. Rename the VM or remove that domain");
      return;
    }
    vm_compare(vm, idx, d);
    return;
  }
  // Not on its host: moved there by a new pin, or new.
  for (const auto& [name, other] : hosts_) {
    if (name == vm.host) continue;
    auto o = other.domains.find(vm.instance);
    if (o != other.domains.end() && ours(o->second->owner) &&
        o->second->owner->address == vm.address()) {
      vm_create(vm, idx, o->second, name);
      return;
    }
  }
  vm_create(vm, idx, nullptr, "");
}

void Differ::vm_create(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain* moved_from,
                       const std::string& from_host) {
  ResourceChange c;
  c.address = vm.address();
  c.kind = "vm";
  c.host = vm.host;
  c.desired = vm_json(vm);
  c.action = Action::Create;
  c.attributes = {attr("image", nullptr, vm.image), attr("cpus", nullptr, vm.cpus),
                  attr("memory", nullptr, size_text(vm.memory))};
  if (vm.disk) c.attributes.push_back(attr("disk", nullptr, size_text(*vm.disk)));
  for (const auto& d : vm.data_disks)
    c.attributes.push_back(attr("disks." + d.name, nullptr, size_text(d.size)));
  c.attributes.push_back(attr("networks", nullptr, nics_text(vm.nics)));
  auto ud = attr("user_data", nullptr, vm.user_data);
  ud.sensitive = true;
  c.attributes.push_back(ud);
  if (!vm.running) c.attributes.push_back(attr("running", nullptr, false));
  if (moved_from) {
    c.action = Action::Replace;
    c.disruption = Disruption::Recreate;
    c.observed = {{"host", from_host}, {"name", moved_from->name}};
    auto h = attr("host", from_host, vm.host);
    h.forces_replacement = true;
    c.attributes.insert(c.attributes.begin(), h);
    c.reason = "pinned to " + vm.host + ": moves from " + from_host + " (made anew there)";
    c.destroys_data = !vm.data_disks.empty();
    if (vm.lifecycle.prevent_destroy) {
      result_.errors.error(vm.location, vm.address() +
                                            " has lifecycle.prevent_destroy, but moving it from " +
                                            from_host + " to " + vm.host + " would destroy it");
    }
  }
  std::vector<ResourceChange> children;
  volumes_for(vm, idx, true, c, children);
  result_.changes.push_back(std::move(c));
  for (auto& ch : children) result_.changes.push_back(std::move(ch));
}

void Differ::vm_compare(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d) {
  ResourceChange c;
  c.address = vm.address();
  c.kind = "vm";
  c.host = vm.host;
  c.desired = vm_json(vm);
  c.observed = {{"name", d.name}, {"state", d.state}, {"vcpus", d.vcpus}, {"memory", d.memory}};
  const json& recorded = d.owner->spec.is_object() ? d.owner->spec : json::object();
  const json want = vm.spec();
  auto replace_if = [&](const char* key, const std::string& name, json before, json after) {
    if (recorded.value(key, json()) == want[key]) return;
    auto a = attr(name, std::move(before), std::move(after));
    a.forces_replacement = true;
    c.attributes.push_back(std::move(a));
  };
  replace_if("image_id", "image", recorded.value("image", json()), vm.image);
  if (vm.lifecycle.on_user_data_change == UserDataChange::Recreate) {
    if (recorded.value("user_data_sha256", json()) != want["user_data_sha256"] ||
        recorded.value("network_config_sha256", json()) != want["network_config_sha256"]) {
      auto a = attr("user_data",
                    "sha256:" + recorded.value("user_data_sha256", std::string("?")).substr(0, 12),
                    vm.user_data);
      a.forces_replacement = true;
      a.sensitive = true;
      c.attributes.push_back(std::move(a));
    }
  }
  replace_if("nics", "networks", nics_text(recorded.value("nics", json::array())),
             nics_text(vm.nics));
  if (replace_requested_.count(vm.address())) {
    auto a = attr("replace", nullptr, "requested");
    a.forces_replacement = true;
    c.attributes.push_back(std::move(a));
    c.reason =
        "replaced on request (--replace): new root disk from the image, cloud-init runs "
        "again" +
        std::string(vm.data_disks.empty() ? "" : "; data disks are kept");
  }
  const bool replace = !c.attributes.empty();
  Disruption disruption = Disruption::None;
  std::string restart_why;
  if (!replace) {
    // Live-state fields: compare with the live domain; drift when live left what kumo recorded.
    auto live_or_restart = [&](const char* key, const std::string& name, long long live,
                               long long maximum, long long desired, json before, json after) {
      if (live == desired) return;
      auto a = attr(name, std::move(before), std::move(after));
      a.drift = recorded.contains(key) && recorded[key] == want[key];
      c.attributes.push_back(std::move(a));
      if (!d.active) return;
      if (desired <= maximum) {
        disruption = worst(disruption, Disruption::Live);
      } else {
        disruption = Disruption::Restart;
        restart_why += std::string(restart_why.empty() ? "" : "; ") + name +
                       " is beyond what the running domain can grow to (" +
                       (name == "memory" ? format_size(static_cast<std::uint64_t>(maximum))
                                         : std::to_string(maximum)) +
                       ")";
      }
    };
    live_or_restart("cpus", "cpus", d.vcpus, d.max_vcpus, vm.cpus, d.vcpus, vm.cpus);
    live_or_restart("memory", "memory", static_cast<long long>(d.memory),
                    static_cast<long long>(d.max_memory), static_cast<long long>(vm.memory),
                    size_text(d.memory), size_text(vm.memory));
    // Running, but never seen ready since it was defined: an apply stopped while waiting.
    if (vm.running && d.active && vm.wait_for != WaitFor::None && !d.owner->ready) {
      c.attributes.push_back(attr("ready", false, true));
      c.reason = "not seen ready since it was defined (an apply was interrupted): wait for it";
    }
    if (d.autostart != vm.autostart) {
      c.attributes.push_back(attr("autostart", d.autostart, vm.autostart));
      disruption = worst(disruption, Disruption::None);
    }
    if (vm.running && !d.active) {
      c.attributes.push_back(attr("running", false, true));
    } else if (!vm.running && d.active) {
      c.attributes.push_back(attr("running", true, false));
      disruption = worst(disruption, Disruption::Restart);
    }
    if (recorded.value("instance_id", json()) != want["instance_id"] &&
        vm.lifecycle.on_user_data_change == UserDataChange::Ignore) {
      auto a = attr("user_data", "(unchanged in the running VM)", vm.user_data);
      a.sensitive = true;
      c.attributes.push_back(a);
      c.reason =
          "on_user_data_change: ignore: only the seed is updated; the running instance keeps its "
          "first boot";
    }
    if (recorded.value("prevent_destroy", json(false)) != json(vm.lifecycle.prevent_destroy) ||
        recorded.value("group", json()) != json(vm.group)) {
      c.attributes.push_back(attr("prevent_destroy", recorded.value("prevent_destroy", json(false)),
                                  vm.lifecycle.prevent_destroy));
    }
  }
  std::vector<ResourceChange> children;
  volumes_for(vm, idx, replace, c, children);
  if (!replace) {
    // A data volume that exists but is not in the domain: an apply stopped between making the
    // volume and attaching it. Attached now (hot-plugged when the VM runs).
    for (const auto& disk : vm.data_disks) {
      const auto v = idx.volumes.find(disk.volume);
      if (v == idx.volumes.end()) continue;  // made anew: its own change says so
      const bool attached = std::any_of(d.disks.begin(), d.disks.end(), [&](const ObservedDisk& x) {
        return x.path == v->second->path;
      });
      if (attached) continue;
      c.attributes.push_back(attr("disks." + disk.name, "(not attached)", size_text(disk.size)));
      if (d.active && vm.running) disruption = worst(disruption, Disruption::Live);
      if (c.reason.empty()) {
        c.reason = "data disk " + quote(disk.name) +
                   " exists but is not attached (an apply was interrupted): attached now";
      }
    }
  }
  if (replace) {
    c.action = Action::Replace;
    c.disruption = Disruption::Recreate;
    if (c.reason.empty()) {
      c.reason = "made anew: cloud-init runs once per instance" +
                 std::string(vm.data_disks.empty() ? "" : "; data disks are kept and reattached");
    }
    if (vm.lifecycle.prevent_destroy) {
      result_.errors.error(vm.location,
                           vm.address() +
                               " has lifecycle.prevent_destroy, but this change replaces it (" +
                               c.attributes.front().name + " changed)");
    }
  } else if (!c.attributes.empty() || !children.empty()) {
    c.action = Action::Update;
    for (const auto& ch : children) disruption = worst(disruption, ch.disruption);
    c.disruption = disruption;
    if (c.reason.empty()) {
      if (disruption == Disruption::Restart && vm.running) {
        c.reason = "shut down (ACPI), redefined and started again: " + restart_why;
      } else if (disruption == Disruption::Restart) {
        c.reason = "shut down (ACPI; forced off after a timeout)";
      } else if (disruption == Disruption::Live) {
        c.reason = "changed in the running guest, no reboot";
      } else if (children.size() > 0 && c.attributes.empty()) {
        c.reason = "disks change";
      }
    }
  }
  if (c.action != Action::NoOp) result_.changes.push_back(std::move(c));
  for (auto& ch : children) result_.changes.push_back(std::move(ch));
}

// Root, seed and data volumes of one VM. A replaced or new VM gets a new root and seed; data
// volumes are kept (grown if needed), created if missing, deleted only when no longer described.
void Differ::volumes_for(const DesiredVm& vm, const HostIndex& idx, bool vm_is_new,
                         ResourceChange& parent, std::vector<ResourceChange>& children) {
  auto child = [&](const std::string& role, Action action) {
    ResourceChange ch;
    ch.address = "volume." + vm.instance + "/" + role;
    ch.kind = "volume";
    ch.host = vm.host;
    ch.parent = vm.address();
    ch.action = action;
    return ch;
  };
  auto find = [&](const std::string& name) -> const ObservedVolume* {
    auto it = idx.volumes.find(name);
    return it == idx.volumes.end() ? nullptr : it->second;
  };
  const auto dom = idx.domains.find(vm.instance);
  const bool running = dom != idx.domains.end() && dom->second->active;
  const ObservedVolume* root = find(vm.root_volume);
  if (vm_is_new || !root) {
    auto ch = child("root", root ? Action::Replace : Action::Create);
    ch.desired = {{"name", vm.root_volume},
                  {"size", vm.disk ? json(*vm.disk) : json(nullptr)},
                  {"image", vm.image}};
    if (root && parent.action == Action::Create)
      ch.reason = "left over from an earlier VM; made anew from the image";
    children.push_back(ch);
  } else if (vm.disk && root->capacity != *vm.disk) {
    if (*vm.disk < root->capacity) {
      result_.errors.error(vm.location, vm.address() + ": disk cannot shrink from " +
                                            format_size(root->capacity) + " to " +
                                            format_size(*vm.disk) + " (kumo only grows disks)");
    } else {
      auto ch = child("root", Action::Update);
      ch.attributes = {attr("size", size_text(root->capacity), size_text(*vm.disk))};
      ch.disruption = Disruption::Live;
      ch.desired = {{"name", vm.root_volume}, {"size", *vm.disk}};
      parent.attributes.push_back(attr("disk", size_text(root->capacity), size_text(*vm.disk)));
      children.push_back(ch);
    }
  }
  const ObservedVolume* seed = find(vm.seed_volume);
  const bool seed_stale =
      parent.action == Action::NoOp &&
      std::any_of(parent.attributes.begin(), parent.attributes.end(),
                  [](const AttributeChange& a) { return a.name == "user_data"; });
  if (vm_is_new || !seed || seed_stale) {
    auto ch = child("seed", seed ? Action::Replace : Action::Create);
    ch.desired = {{"name", vm.seed_volume},
                  {"instance_id", vm.instance_id},
                  {"user_data", vm.user_data},
                  {"meta_data", vm.meta_data},
                  {"network_config", vm.network_config}};
    children.push_back(ch);
  }
  for (const auto& disk : vm.data_disks) {
    const ObservedVolume* v = find(disk.volume);
    if (!v) {
      auto ch = child("data/" + disk.name, Action::Create);
      ch.attributes = {attr("size", nullptr, size_text(disk.size))};
      // A disk added to a running guest is hot-plugged: no restart.
      ch.disruption = !vm_is_new && running ? Disruption::Live : Disruption::None;
      ch.desired = {{"name", disk.volume}, {"size", disk.size}};
      if (!vm_is_new)
        parent.attributes.push_back(attr("disks." + disk.name, nullptr, size_text(disk.size)));
      if (!vm_is_new && running) {
        ch.reason =
            "hot-plugged into the running guest: /dev/disk/by-id/virtio-" + disk_serial(disk.name);
      }
      children.push_back(ch);
    } else if (v->capacity < disk.size) {
      auto ch = child("data/" + disk.name, Action::Update);
      ch.attributes = {attr("size", size_text(v->capacity), size_text(disk.size))};
      ch.disruption = Disruption::Live;
      ch.desired = {{"name", disk.volume}, {"size", disk.size}};
      if (!vm_is_new)
        parent.attributes.push_back(
            attr("disks." + disk.name, size_text(v->capacity), size_text(disk.size)));
      children.push_back(ch);
    } else if (v->capacity > disk.size) {
      result_.errors.error(vm.location, vm.address() + ": data disk " + quote(disk.name) +
                                            " cannot shrink from " + format_size(v->capacity) +
                                            " to " + format_size(disk.size) +
                                            " (kumo only grows disks)");
    }
  }
  // Data volumes of this instance that the file no longer lists.
  const std::string prefix = "volume." + vm.instance + "/data/";
  for (const auto& [name, v] : idx.volumes) {
    if (!ours(v->owner) || v->owner->address.rfind(prefix, 0) != 0) continue;
    const std::string disk = v->owner->address.substr(prefix.size());
    const bool wanted = std::any_of(vm.data_disks.begin(), vm.data_disks.end(),
                                    [&](const DesiredDisk& d) { return d.name == disk; });
    if (wanted) continue;
    // A data disk outlives everything but its VM: it is deleted with the VM (kumo destroy, or
    // the VM taken out of the file), never on its own.
    result_.errors.error(vm.location,
                         vm.address() + ": data disk " + quote(disk) + " (" + v->name + ", " +
                             format_size(v->capacity) +
                             ") is no longer listed under disks:, but kumo never deletes the data "
                             "disk of a VM that stays. List it again, or remove it with its VM "
                             "(kumo destroy --target " +
                             vm.address() + ")");
  }
}

void Differ::delete_vm(const HostIndex& idx, const ObservedDomain& d, const std::string& reason,
                       bool moved) {
  ResourceChange c;
  c.address = d.owner->address;
  c.kind = "vm";
  c.host = idx.host->host;
  c.parent = moved ? c.address : "";  // the old copy of a moved VM is part of its replacement
  c.action = Action::Delete;
  c.reason = reason;
  c.observed = {{"name", d.name}, {"state", d.state}};
  const json& spec = d.owner->spec.is_object() ? d.owner->spec : json::object();
  if (spec.value("prevent_destroy", false)) {
    result_.errors.error({},
                         "host " + quote(c.host) + ": " + c.address +
                             " has lifecycle.prevent_destroy; set "
                             "prevent_destroy: false and apply before removing it from the file");
  }
  const std::string instance = c.address.substr(3);
  std::vector<ResourceChange> children;
  for (const auto& [name, v] : idx.volumes) {
    if (!ours(v->owner) || v->owner->address.rfind("volume." + instance + "/", 0) != 0) continue;
    ResourceChange ch;
    ch.address = v->owner->address;
    ch.kind = "volume";
    ch.host = c.host;
    ch.parent = c.address;
    ch.action = Action::Delete;
    ch.observed = {{"name", v->name}, {"size", v->capacity}};
    if (moved && spec.value("prevent_destroy", false)) ch.destroys_data = true;
    ch.destroys_data = ch.address.find("/data/") != std::string::npos;
    c.destroys_data = c.destroys_data || ch.destroys_data;
    children.push_back(ch);
    claimed_volumes_.insert(c.host + "/" + v->name);
  }
  deletes_.push_back(std::move(c));
  for (auto& ch : children) deletes_.push_back(std::move(ch));
}

void Differ::find_orphans() {
  std::set<std::string> wanted_vms, wanted_networks;  // host/address
  for (const auto& vm : desired_.vms) {
    if (!vm.host.empty()) wanted_vms.insert(vm.host + "/" + vm.address());
  }
  for (const auto& n : desired_.networks) wanted_networks.insert(n.host + "/" + n.libvirt_name);
  std::set<std::string> desired_instances;
  for (const auto& vm : desired_.vms) desired_instances.insert(vm.instance);
  for (const auto& [host, idx] : hosts_) {
    for (const auto& [name, d] : idx.domains) {
      if (!ours(d->owner) || wanted_vms.count(host + "/" + d->owner->address)) continue;
      const std::string instance = d->owner->address.substr(3);
      if (desired_instances.count(instance)) {
        // Moved by a pin: its replacement is planned on the new host; remove the old copy.
        delete_vm(idx, *d, "the old copy of a VM moved to another host", true);
      } else {
        delete_vm(idx, *d, "no longer in " + cfg_.file);
      }
    }
    for (const auto& [name, n] : idx.networks) {
      if (!ours(n->owner) || wanted_networks.count(host + "/" + name)) continue;
      ResourceChange c;
      c.address = n->owner->address;
      c.kind = "network";
      c.host = host;
      c.action = Action::Delete;
      c.observed = {{"name", name}};
      const auto users = running_vms_on(idx, name);
      c.reason = users.empty() ? "no longer in " + cfg_.file
                               : "running VMs lose connectivity: " + join(users);
      c.disruption = users.empty() ? Disruption::None : Disruption::Restart;
      deletes_.push_back(std::move(c));
    }
    // Volumes no domain accounts for: left by an interrupted apply or a removed VM.
    for (const auto& [name, v] : idx.volumes) {
      if (!ours(v->owner) || claimed_volumes_.count(host + "/" + name)) continue;
      const std::string addr = v->owner->address;  // volume.<instance>/<role>
      const std::string instance = addr.substr(7, addr.find('/') - 7);
      const bool instance_wanted_here = wanted_vms.count(host + "/vm." + instance) > 0;
      if (instance_wanted_here) continue;  // handled with its VM
      ResourceChange c;
      c.address = addr;
      c.kind = "volume";
      c.host = host;
      c.action = Action::Delete;
      c.destroys_data = addr.find("/data/") != std::string::npos;
      c.observed = {{"name", name}, {"size", v->capacity}};
      c.reason = "left over: no VM of this cluster uses it";
      deletes_.push_back(std::move(c));
    }
  }
}

}  // namespace

DiffResult diff(const ClusterConfig& cfg, const DesiredCluster& desired,
                const std::vector<ObservedHost>& observed,
                const std::vector<std::string>& replace) {
  return Differ(cfg, desired, observed, replace).run();
}

std::string fingerprint(const std::vector<ObservedHost>& observed) {
  json all = json::array();
  for (const auto& h : observed) {
    json host = {{"host", h.host}, {"reachable", h.reachable}};
    json domains = json::array(), networks = json::array(), volumes = json::array();
    for (const auto& d : h.domains) {
      domains.push_back({d.name, d.uuid, d.state, d.vcpus, d.memory, d.autostart,
                         d.owner ? d.owner->spec_hash : std::string()});
    }
    for (const auto& n : h.networks) {
      json dhcp = json::array();
      for (const auto& e : n.dhcp_hosts) dhcp.push_back(e.mac + e.ip + e.name);
      for (const auto& e : n.dns_hosts) {
        dhcp.push_back(e.ip + " " + nlohmann::json(e.names).dump());
      }
      networks.push_back({n.name, n.uuid, n.active, n.autostart, dhcp});
    }
    for (const auto& v : h.volumes) {
      // A lock comes and goes with every apply; a plan saved meanwhile is not stale for it.
      if (!is_lock_volume(v.name)) volumes.push_back({v.pool, v.name, v.capacity});
    }
    host["domains"] = domains;
    host["networks"] = networks;
    host["volumes"] = volumes;
    all.push_back(host);
  }
  return "sha256:" + sha256_hex(all.dump());
}

std::vector<ResourceChange> filter_targets(const std::vector<ResourceChange>& changes,
                                           const DesiredCluster& desired,
                                           const std::vector<std::string>& targets) {
  std::set<std::string> keep(targets.begin(), targets.end());
  for (const auto& vm : desired.vms) {
    if (!keep.count(vm.address())) continue;
    for (const auto& nic : vm.nics) keep.insert("network." + nic.network);  // what it depends on
  }
  std::vector<ResourceChange> out;
  for (const auto& c : changes) {
    if (keep.count(c.address) || (!c.parent.empty() && keep.count(c.parent))) out.push_back(c);
  }
  return out;
}

}  // namespace kumo
