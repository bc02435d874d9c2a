#include "planner/placement.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "planner/config/units.h"
#include "planner/host_room.h"
#include "planner/move_copies.h"

namespace kumo {
namespace {

struct HostLoad {
  const DesiredHost* config = nullptr;
  const ObservedHost* observed = nullptr;
  HostRoom room;                 // used: other domains + this cluster's instances placed here
  std::uint64_t memory_now = 0;  // what every domain on the host has right now
  int cpus_now = 0;
  std::map<std::string, int> group_count;             // vms: entry -> instances here
  std::set<std::string> affinity_groups;              // anti_affinity groups present here
  std::unordered_set<std::string_view> domain_names;  // of every domain there (observed's)
};

bool networks_on_host(const DesiredCluster& desired, const DesiredVm& vm, const std::string& host) {
  for (const auto& nic : vm.nics) {
    if (nic.network.empty()) continue;  // a host bridge or interface: the host's own business
    const NetworkTemplate* net = desired.find_network(nic.network);
    if (!net || std::find(net->hosts.begin(), net->hosts.end(), host) == net->hosts.end())
      return false;
  }
  return true;
}

void add(HostLoad& load, const DesiredVm& vm) {
  load.room.add(vm.cpus, vm.memory);
  load.group_count[vm.group]++;
  if (vm.anti_affinity) load.affinity_groups.insert(*vm.anti_affinity);
}

// Why `vm` cannot go to `load`'s host, or "" if it can.
std::string refusal(const DesiredCluster& desired, const DesiredVm& vm, const HostLoad& load) {
  const std::string& name = load.config->name;
  if (!load.observed || !load.observed->reachable) return "unreachable";
  if (load.config->drain) return "drained (drain: true)";
  if (!networks_on_host(desired, vm, name)) return "does not have all of its networks";
  if (load.domain_names.count(vm.instance))
    return "a domain named \"" + vm.instance + "\" that kumo did not make is there";
  if (auto why = machine_refusal(vm, load.observed->facts); !why.empty()) return why;
  for (const auto& disk : vm.data_disks) {
    if (disk.pool.empty() || load.config->find_pool(disk.pool)) continue;
    const auto& pools = load.observed->pools;
    if (std::none_of(pools.begin(), pools.end(),
                     [&](const ObservedPool& p) { return p.name == disk.pool; }))
      return "has no storage pool \"" + disk.pool + "\" (disks." + disk.name + ".pool)";
  }
  if (vm.anti_affinity && load.affinity_groups.count(*vm.anti_affinity)) {
    return "already holds a member of anti_affinity group \"" + *vm.anti_affinity + "\"";
  }
  return load.room.refusal(vm.cpus, vm.memory);
}

// The hosts holding the copies of one VM that count: all but an interrupted move's
// unverified or spare copy (move_copies.h).
std::vector<std::string> truth_hosts(
    const std::vector<std::pair<std::string, const ObservedDomain*>>& copies) {
  auto copy_on = [&](const std::string& host) -> const ObservedDomain* {
    for (const auto& [h, d] : copies)
      if (h == host) return d;
    return nullptr;
  };
  std::vector<std::string> out;
  for (const auto& [host, d] : copies) {
    if (copy_role(host, *d, copy_on) == CopyRole::Vm) out.push_back(host);
  }
  return out;
}

class Placer {
 public:
  Placer(const std::vector<ObservedHost>& observed, DesiredCluster& desired) : desired_(desired) {
    for (const auto& vm : desired.vms) {
      if (vm.adopted() && vm.pinned_host) adopted_.insert({*vm.pinned_host, vm.adopt});
    }
    for (const auto& h : desired.hosts) loads_.push_back(load_for(h, observed));
    // Each VM's copies, found by its address once (not by scanning every domain per VM), in the
    // order of the hosts, then of their domains.
    for (const auto& l : loads_) {
      if (!reachable(l)) continue;
      for (const auto& d : l.observed->domains) {
        if (is_cluster_vm(d, desired_.cluster))
          copies_[d.owner->address].emplace_back(l.config->name, &d);
      }
    }
  }

  PlacementResult run() {
    std::vector<DesiredVm*> unplaced = place_existing();
    place_new(unplaced);
    check_full();
    return std::move(result_);
  }

 private:
  HostLoad load_for(const DesiredHost& h, const std::vector<ObservedHost>& observed) const {
    HostLoad load;
    load.config = &h;
    for (const auto& o : observed) {
      if (o.host == h.name) load.observed = &o;
    }
    if (!load.observed || !load.observed->reachable) return load;
    load.room = empty_room(h, load.observed->facts);
    for (const auto& d : load.observed->domains) {
      load.domain_names.insert(d.name);
      load.memory_now += d.memory;
      load.cpus_now += d.vcpus;
      // A domain a VM of the file adopts counts once: as that VM, when it is placed.
      if (!is_cluster_vm(d, desired_.cluster) && !adopted_here(h.name, d.name))
        load.room.add(d.vcpus, d.memory);
    }
    return load;
  }

  bool adopted_here(const std::string& host, const std::string& domain) const {
    return adopted_.count({host, domain}) > 0;
  }

  HostLoad* load_of(const std::string& host) {
    for (auto& l : loads_) {
      if (l.config->name == host) return &l;
    }
    return nullptr;
  }

  static bool reachable(const HostLoad& l) { return l.observed && l.observed->reachable; }

  // 1. Existing instances stay; pinned ones go to their pin. Returns the new ones.
  std::vector<DesiredVm*> place_existing() {
    const bool some_unreachable =
        std::any_of(loads_.begin(), loads_.end(), [](const HostLoad& l) { return !reachable(l); });
    std::vector<DesiredVm*> unplaced;
    static const std::vector<std::pair<std::string, const ObservedDomain*>> kNone;
    for (auto& vm : desired_.vms) {
      const auto it = copies_.find(vm.address());
      // The copy an interrupted move left unverified does not count while its source is there.
      const std::vector<std::string> found = truth_hosts(it == copies_.end() ? kNone : it->second);
      if (found.size() > 1) {
        result_.errors.error(vm.location, vm.address() + " exists on more than one host (" +
                                              found[0] + " and " + found[1] +
                                              "); destroy the extra copy by hand (virsh "
                                              "undefine) and plan again");
        continue;
      }
      if (vm.pinned_host) {
        vm.host = *vm.pinned_host;
        HostLoad* l = load_of(vm.host);
        if (l && l->config->drain) {
          result_.errors.error(vm.location, vm.address() + " is pinned to host " + quote(vm.host) +
                                                ", which is drained (hosts." + vm.host +
                                                ".drain: true): pin it to another "
                                                "host, or remove its host: to let kumo place it");
          vm.host.clear();
          continue;
        }
        if (!l || !reachable(*l)) {
          result_.unknown.push_back(vm.instance);
          vm.host.clear();
          continue;
        }
      } else if (!found.empty() && !load_of(found[0])->config->drain) {
        vm.host = found[0];
      } else if (!found.empty()) {
        unplaced.push_back(&vm);  // on a drained host: placed anew, then moved there
        continue;
      } else if (some_unreachable) {
        result_.unknown.push_back(vm.instance);  // it may live on a host we could not look at
        continue;
      } else {
        unplaced.push_back(&vm);
        continue;
      }
      add(*load_of(vm.host), vm);
    }
    return unplaced;
  }

  // 2. New instances, in file order. Failures are reported once per vms: entry.
  void place_new(const std::vector<DesiredVm*>& unplaced) {
    struct Failure {
      const DesiredVm* first = nullptr;
      std::string last, reasons;
      int count = 0;
    };
    std::map<std::string, Failure> failed;
    for (DesiredVm* vm : unplaced) {
      std::vector<HostLoad*> fits;
      std::string reasons;
      for (auto& l : loads_) {
        const std::string why = refusal(desired_, *vm, l);
        if (why.empty()) {
          fits.push_back(&l);
        } else {
          reasons += "; " + l.config->name + ": " + why;
        }
      }
      if (fits.empty()) {
        auto& f = failed[vm->group];
        if (f.count++ == 0) {
          f.first = vm;
          f.reasons = reasons;
        }
        f.last = vm->instance;
        continue;
      }
      HostLoad* best = choose(*vm, fits);
      vm->host = best->config->name;
      note_detour(*vm, *best);
      add(*best, *vm);
    }
    for (const auto& [group, f] : failed) {
      const std::string who = f.count == 1
                                  ? "vm " + quote(f.first->instance)
                                  : std::to_string(f.count) + " instances of vm " + quote(group) +
                                        " (" + f.first->instance + " to " + f.last + ")";
      const auto& secret = f.first->sensitive;
      result_.errors.error(f.first->location,
                           who + " (" + secret.show("memory", format_size(f.first->memory)) + ", " +
                               secret.show("cpus", std::to_string(f.first->cpus)) +
                               " vCPU each) fit on no host" + f.reasons);
    }
  }

  // Where `vm` would go if every reachable host with its networks were open to it; when that is
  // not `chosen`, the plan says why not.
  void note_detour(const DesiredVm& vm, const HostLoad& chosen) {
    std::vector<HostLoad*> open;
    for (auto& l : loads_) {
      if (reachable(l) && networks_on_host(desired_, vm, l.config->name)) open.push_back(&l);
    }
    if (open.empty()) return;
    const HostLoad* preferred = choose(vm, open);
    if (preferred == &chosen) return;
    result_.detours[vm.instance] = "placed on " + chosen.config->name + ", not " +
                                   preferred->config->name + " (" +
                                   refusal(desired_, vm, *preferred) + ")";
  }

  // Spread: fewest of its group, then most memory left. Pack: least memory left.
  static HostLoad* choose(const DesiredVm& vm, std::vector<HostLoad*>& fits) {
    auto rank = [&](const HostLoad* l) {
      const long long free_after =
          static_cast<long long>(l->room.memory_free()) - static_cast<long long>(vm.memory);
      if (vm.placement == PlacementStrategy::Pack) return std::make_pair(0LL, free_after);
      auto it = l->group_count.find(vm.group);
      return std::make_pair(static_cast<long long>(it == l->group_count.end() ? 0 : it->second),
                            -free_after);
    };
    // stable_sort keeps the hosts' file order among equals: the tie-break is deterministic.
    std::stable_sort(fits.begin(), fits.end(),
                     [&](const HostLoad* a, const HostLoad* b) { return rank(a) < rank(b); });
    return fits.front();
  }

  // 3. Pinned or grown instances may over-fill a host: refuse only what makes it fuller.
  void check_full() {
    for (const auto& l : loads_) {
      if (!reachable(l)) continue;
      if (l.room.memory_used > l.room.memory_capacity && l.room.memory_used > l.memory_now) {
        result_.errors.error(
            {}, "host " + quote(l.config->name) + " would be over-full: its VMs would need " +
                    format_size(l.room.memory_used) + " of memory, it has " +
                    format_size(l.room.memory_capacity) + " (memory_overcommit " +
                    std::to_string(l.config->memory_overcommit).substr(0, 4) + ")");
      }
      if (l.room.cpus_used > l.room.cpu_capacity && l.room.cpus_used > l.cpus_now) {
        result_.errors.error(
            {}, "host " + quote(l.config->name) + " would be over-full: its VMs would need " +
                    std::to_string(l.room.cpus_used) + " vCPUs, it allows " +
                    std::to_string(static_cast<int>(l.room.cpu_capacity)) + " (" +
                    std::to_string(l.observed->facts.cpus) + " CPUs, cpu_overcommit " +
                    std::to_string(l.config->cpu_overcommit).substr(0, 4) + ")");
      }
    }
  }

  DesiredCluster& desired_;
  std::set<std::pair<std::string, std::string>> adopted_;  // (host, domain) a VM adopts
  std::vector<HostLoad> loads_;
  // This cluster's VM domains on the reachable hosts, by address: (host, domain) each.
  std::unordered_map<std::string, std::vector<std::pair<std::string, const ObservedDomain*>>>
      copies_;
  PlacementResult result_;
};

}  // namespace

PlacementResult place(const std::vector<ObservedHost>& observed, DesiredCluster& desired) {
  return Placer(observed, desired).run();
}

std::string machine_refusal(const DesiredVm& vm, const HostFacts& facts) {
  if (vm.firmware == Firmware::Uefi && facts.uefi == false)
    return "has no UEFI firmware for q35 guests (install Debian's ovmf there)";
  if (vm.secure_boot && facts.secure_boot == false)
    return "has no secure-boot UEFI firmware (install Debian's ovmf there)";
  if (vm.tpm && facts.tpm == false)
    return "has no TPM emulator (install Debian's swtpm and swtpm-tools there)";
  return "";
}

}  // namespace kumo
