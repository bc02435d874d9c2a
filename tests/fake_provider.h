// An in-memory stand-in for libvirt hosts: records every call, simulates unreachable and slow
// hosts. What apply leaves behind comes from the real executor running on its sessions
// (fake_session.h), so there is one model of it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "providers/host_session.h"
#include "providers/ownership.h"
#include "providers/provider.h"

namespace kumo::test {

// A host's facts as the fake provider reports them; the rest (CPU model, details) left unknown.
inline HostFacts host_facts(const std::string& hostname, int cpus, std::uint64_t memory, bool kvm) {
  HostFacts f;
  f.hostname = hostname;
  f.arch = "x86_64";
  f.cpus = cpus;
  f.memory = memory;
  f.free_memory = memory;
  f.kvm = kvm;
  f.libvirt_version = "9.0.0";
  return f;
}

class FakeProvider : public Provider {
 public:
  ObservedHost observe(const HostTarget& target, std::chrono::milliseconds timeout) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back("observe " + target.name);
    }
    auto slow = delays.find(target.name);
    if (slow != delays.end()) {
      if (slow->second > timeout) {
        std::this_thread::sleep_for(timeout);
        return unreachable_host(target,
                                "timed out after " + std::to_string(timeout.count()) + "ms");
      }
      std::this_thread::sleep_for(slow->second);
    }
    if (unreachable.count(target.name)) return unreachable_host(target, "connection refused");
    std::lock_guard<std::recursive_mutex> lock(state_mu);
    ObservedHost h = host(target.name);
    h.reachable = true;
    if (target.scope) {  // as the libvirt provider: everything counted, only the scope read
      ++scoped_reads;
      h.scoped = listed(h);
      std::erase_if(h.domains,
                    [&](const ObservedDomain& d) { return !target.scope->has_domain(d.name); });
      std::erase_if(h.volumes,
                    [&](const ObservedVolume& v) { return !target.scope->has_volume(v.name); });
    }
    h.api_calls = 5 + static_cast<int>(h.domains.size() + h.networks.size() + h.volumes.size());
    return h;
  }

  ObservedHost& host(const std::string& name, int cpus = 8, std::uint64_t memory = 32ull << 30,
                     bool kvm = true) {
    auto [it, fresh] = hosts_.try_emplace(name);
    if (fresh) {
      it->second.host = name;
      it->second.facts = host_facts(name, cpus, memory, kvm);
      // Every host has the pool kumo uses unless told otherwise (as libvirt's "default").
      ObservedPool pool;
      pool.name = "default";
      pool.type = "dir";
      pool.path = "/var/lib/libvirt/images";
      pool.active = true;
      pool.autostart = true;
      it->second.pools.push_back(pool);
    }
    return it->second;
  }

  ObservedDomain& add_domain(const std::string& host_name, const std::string& name,
                             std::optional<Ownership> owner = {},
                             std::uint64_t memory = 512ull << 20, int vcpus = 1) {
    ObservedDomain d;
    d.name = name;
    d.uuid = "uuid-" + name;
    d.state = "running";
    d.active = true;
    d.autostart = true;
    d.vcpus = vcpus;
    d.max_vcpus = vcpus;
    d.memory = memory;
    d.max_memory = memory;
    d.owner = std::move(owner);
    host(host_name).domains.push_back(d);
    return host(host_name).domains.back();
  }

  ObservedVolume& add_volume(const std::string& host_name, const std::string& name,
                             std::uint64_t capacity, const std::string& pool = "default") {
    ObservedVolume v;
    v.pool = pool;
    v.name = name;
    v.path = "/var/lib/libvirt/images/" + name;
    v.capacity = capacity;
    v.format = "qcow2";
    v.owner = volume_owner(name);
    v.changed = "made-" + std::to_string(++volumes_made_);
    host(host_name).volumes.push_back(v);
    return host(host_name).volumes.back();
  }

  ObservedNetwork& add_network(const std::string& host_name, const std::string& name) {
    ObservedNetwork n;
    n.name = name;
    n.uuid = "uuid-" + name;  // like a real UUID, without '_'
    std::replace(n.uuid.begin(), n.uuid.end(), '_', '-');
    n.active = true;
    n.autostart = true;
    n.owner = network_owner(name);
    host(host_name).networks.push_back(n);
    return host(host_name).networks.back();
  }

  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  std::set<std::string> unreachable;
  std::map<std::string, std::chrono::milliseconds> delays;
  std::atomic<int> scoped_reads{0};  // observes limited by HostTarget::scope
  std::recursive_mutex state_mu;     // guards the hosts' state against FakeSession writes

 private:
  static ObservedHost unreachable_host(const HostTarget& t, const std::string& why) {
    ObservedHost h;
    h.host = t.name;
    h.uri = t.uri;
    h.error = "host " + t.name + " (" + t.uri + "): " + why;
    return h;
  }

  std::map<std::string, ObservedHost> hosts_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  std::uint64_t volumes_made_ = 0;  // add_volume numbers the volumes it makes (their `changed`)
};

}  // namespace kumo::test
