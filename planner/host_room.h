// A host's room for VMs, as placement counts it: what the host may give guests under its
// overcommit settings, and what is in use. One accounting for placement (placement.h) and for
// what `kumo hosts` says placement will still admit (hosts_report.h), so the two never disagree.
#pragma once

#include <cstdint>
#include <string>

#include "planner/desired.h"
#include "providers/observed.h"

namespace kumo {

struct HostRoom {
  std::uint64_t memory_capacity = 0;  // bytes of guest memory: host memory × memory_overcommit
  double cpu_capacity = 0;            // vCPUs: host CPUs × cpu_overcommit
  std::uint64_t memory_used = 0;      // bytes
  int cpus_used = 0;                  // vCPUs

  void add(int cpus, std::uint64_t memory) {
    cpus_used += cpus;
    memory_used += memory;
  }
  std::uint64_t memory_free() const {
    return memory_capacity > memory_used ? memory_capacity - memory_used : 0;
  }
  // The most vCPUs one more VM may have: floor(cpu_capacity - cpus_used), never negative.
  int cpus_free() const;
  // Why a VM of this size does not fit, or "" if it does.
  std::string refusal(int cpus, std::uint64_t memory) const;
};

// An empty host's room: its CPUs and memory (facts) times the host's overcommit settings.
HostRoom empty_room(const DesiredHost& host, const HostFacts& facts);

// One of `cluster`'s VMs. Placement counts these at the size the file gives them, every other
// domain (another cluster's, or one kumo did not make, running or not) at its size now.
bool is_cluster_vm(const ObservedDomain& domain, const std::string& cluster);

}  // namespace kumo
