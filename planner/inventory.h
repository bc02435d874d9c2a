// kumo inventory: the cluster as an Ansible inventory. One Ansible host per running VM that kumo
// can reach, with the same route and known_hosts kumo ssh uses; groups per vms: entry, per host
// and per network. Pure: built from what reach_vm found (planner/access.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planner/access.h"
#include "planner/desired.h"

namespace kumo {

struct Inventory {
  // Host name -> its variables (ansible_host, ansible_user, ... kumo_*), sorted by name.
  std::map<std::string, nlohmann::ordered_json> hosts;
  // Group -> its hosts, sorted. Group names are Ansible-safe: anything but letters, digits and
  // '_' becomes '_' (vms: entry "web-tier" is group "web_tier").
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::string> left_out;  // "vm.web-0: why", for VMs with no ssh route
};

Inventory build_inventory(const DesiredCluster& desired, const std::vector<VmReach>& vms,
                          const SshFiles& files);

// Ansible's YAML inventory form ({all: {hosts: ..., children: ...}}), as JSON (the YAML view
// prints it as YAML; Ansible reads either).
nlohmann::ordered_json inventory_document(const Inventory& inv);
// The dynamic-inventory protocol: --list ({_meta: {hostvars}, all: {children}, group: {hosts}})
nlohmann::ordered_json inventory_list(const Inventory& inv);

std::string ansible_group_name(const std::string& name);

}  // namespace kumo
