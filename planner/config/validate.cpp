// Checks across objects: overlapping CIDRs on a host, duplicate addresses, VMs whose networks
// are not on their host, anti-affinity groups larger than the hosts that could hold them.
#include <algorithm>
#include <map>

#include "planner/config/loader_internal.h"

namespace kumo::detail {
namespace {

bool on_host(const NetworkConfig& net, const std::string& host) {
  return std::find(net.hosts.begin(), net.hosts.end(), host) != net.hosts.end();
}

// Hosts on which every network of the VM exists.
std::vector<std::string> candidate_hosts(const ClusterConfig& cfg, const VmConfig& vm) {
  std::vector<std::string> out;
  for (const auto& h : cfg.hosts) {
    bool ok = true;
    for (const auto& nic : vm.networks) {
      if (nic.network.empty()) continue;  // a host bridge or interface
      const NetworkConfig* net = cfg.find_network(nic.network);
      ok = ok && net && on_host(*net, h.name);
    }
    if (ok) out.push_back(h.name);
  }
  return out;
}

void check_overlaps(const ClusterConfig& cfg, Diagnostics& diags) {
  for (size_t i = 0; i < cfg.networks.size(); ++i) {
    const auto& b = cfg.networks[i];
    if (!b.cidr) continue;
    for (size_t j = 0; j < i; ++j) {
      const auto& a = cfg.networks[j];
      if (!a.cidr || !a.cidr->overlaps(*b.cidr)) continue;
      for (const auto& h : b.hosts) {
        if (on_host(a, h)) {
          diags.error(b.cidr_location, ctx("network", b.name) + ": cidr " + b.cidr->str() +
                                           " overlaps network " + quote(a.name) + " (" +
                                           a.cidr->str() + ") on host " + quote(h));
          break;
        }
      }
    }
  }
}

void check_addresses(const ClusterConfig& cfg, Diagnostics& diags) {
  std::map<std::pair<std::string, Ipv4>, std::string> ips;  // (network, ip) -> instance
  std::map<Mac, std::string> macs;
  for (const auto& vm : cfg.vms) {
    const auto names = vm.instance_names();
    for (const auto& nic : vm.networks) {
      bool ip_reported = false, mac_reported = false;  // one message per written address
      for (int i = 0; i < vm.instance_count(); ++i) {
        if (nic.ip) {
          const Ipv4 ip{nic.ip->value + static_cast<std::uint32_t>(i)};
          auto [it, fresh] = ips.emplace(std::make_pair(nic.network, ip), names[i]);
          if (!fresh && !ip_reported) {
            diags.error(nic.ip_location, ctx("vm", vm.name) + ": ip " +
                                             vm.sensitive.show("networks", ip.str()) +
                                             " on network " + quote(nic.network) +
                                             " is already used by " + quote(it->second));
            ip_reported = true;
          }
        }
        if (nic.mac) {
          const Mac mac = nic.mac->plus(static_cast<std::uint32_t>(i));
          auto [it, fresh] = macs.emplace(mac, names[i]);
          if (!fresh && !mac_reported) {
            diags.error(nic.mac_location, ctx("vm", vm.name) + ": mac " +
                                              vm.sensitive.show("networks", mac.str()) +
                                              " is already used by " + quote(it->second));
            mac_reported = true;
          }
        }
      }
    }
  }
}

void check_instance_names(const ClusterConfig& cfg, Diagnostics& diags) {
  std::map<std::string, std::string> seen;  // instance -> vm entry
  for (const auto& vm : cfg.vms) {
    for (const auto& inst : vm.instance_names()) {
      auto [it, fresh] = seen.emplace(inst, vm.name);
      if (!fresh) {
        diags.error(vm.location, ctx("vm", vm.name) + ": instance name " + quote(inst) +
                                     " clashes with vm " + quote(it->second));
      }
    }
  }
}

void check_placement(const ClusterConfig& cfg, Diagnostics& diags) {
  std::map<std::string, std::vector<const VmConfig*>> groups;
  for (const auto& vm : cfg.vms) {
    const auto candidates = candidate_hosts(cfg, vm);
    if (vm.host) {
      if (!cfg.find_host(*vm.host)) continue;  // reported where it was read
      for (const auto& nic : vm.networks) {
        const NetworkConfig* net = cfg.find_network(nic.network);
        if (net && !on_host(*net, *vm.host)) {
          diags.error(vm.host_location, ctx("vm", vm.name) + ": pinned to host " + quote(*vm.host) +
                                            ", but its network " + quote(net->name) +
                                            " is not on that host");
        }
      }
    } else if (candidates.empty() && !vm.networks.empty()) {
      diags.error(vm.location, ctx("vm", vm.name) +
                                   ": no host has all of its networks; list the hosts under "
                                   "each network's hosts:");
    }
    if (vm.anti_affinity) groups[*vm.anti_affinity].push_back(&vm);
  }
  for (const auto& [group, members] : groups) {
    int total = 0;
    std::vector<std::string> hosts;
    for (const auto* vm : members) {
      total += vm->instance_count();
      for (auto& h : vm->host ? std::vector<std::string>{*vm->host} : candidate_hosts(cfg, *vm)) {
        if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
      }
    }
    if (total > static_cast<int>(hosts.size())) {
      const VmConfig* last = members.back();
      diags.error(last->anti_affinity_location,
                  "anti_affinity group " + quote(group) + " has " + std::to_string(total) +
                      " instances but only " + std::to_string(hosts.size()) +
                      " host(s) can hold them; no two may share a host");
    }
  }
}

}  // namespace

void validate_cluster(const ClusterConfig& cfg, Diagnostics& diags) {
  // Placement reasons over hosts and networks together; after earlier errors (a network whose
  // hosts: list was wrong, say) it would only repeat them for every VM.
  const bool clean = !diags.has_errors();
  check_overlaps(cfg, diags);
  check_addresses(cfg, diags);
  check_instance_names(cfg, diags);
  if (clean) check_placement(cfg, diags);
}

}  // namespace kumo::detail
