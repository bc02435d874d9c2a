#include "planner/inventory.h"

#include <algorithm>
#include <cctype>

#include "providers/ssh/spawn.h"

namespace kumo {

std::string ansible_group_name(const std::string& name) {
  std::string out = name;
  for (auto& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  if (!out.empty() && std::isdigit(static_cast<unsigned char>(out[0]))) out = "_" + out;
  return out;
}

Inventory build_inventory(const DesiredCluster& desired, const std::vector<VmReach>& vms,
                          const SshFiles& files) {
  Inventory inv;
  for (const auto& r : vms) {
    if (!r.target) {
      inv.left_out.push_back("vm." + r.vm + ": " + r.error);
      continue;
    }
    const SshTarget& t = *r.target;
    nlohmann::ordered_json vars;
    vars["ansible_host"] = t.address;
    vars["ansible_user"] = t.user;
    if (!t.identity_file.empty()) vars["ansible_ssh_private_key_file"] = t.identity_file;
    vars["ansible_ssh_common_args"] = ssh::shell_join(ssh_common_options(t, files));
    vars["kumo_cluster"] = desired.cluster;
    vars["kumo_address"] = "vm." + t.vm;
    vars["kumo_host"] = t.host;
    vars["kumo_network"] = t.network;
    nlohmann::ordered_json by_network = nlohmann::ordered_json::object();
    for (const auto& a : r.addresses) {
      if (!a.ip.empty()) by_network[a.network] = a.ip;
    }
    vars["kumo_addresses"] = by_network;
    inv.hosts[t.vm] = vars;
    inv.groups[ansible_group_name(t.group)].push_back(t.vm);
    inv.groups[ansible_group_name("host_" + t.host)].push_back(t.vm);
    for (const auto& a : r.addresses) {
      auto& g = inv.groups[ansible_group_name("net_" + a.network)];
      if (std::find(g.begin(), g.end(), t.vm) == g.end()) g.push_back(t.vm);
    }
  }
  for (auto& [name, members] : inv.groups) std::sort(members.begin(), members.end());
  std::sort(inv.left_out.begin(), inv.left_out.end());
  return inv;
}

nlohmann::ordered_json inventory_document(const Inventory& inv) {
  nlohmann::ordered_json all;
  all["hosts"] = nlohmann::ordered_json::object();
  for (const auto& [name, vars] : inv.hosts) all["hosts"][name] = vars;
  nlohmann::ordered_json children = nlohmann::ordered_json::object();
  for (const auto& [group, members] : inv.groups) {
    nlohmann::ordered_json hosts = nlohmann::ordered_json::object();
    for (const auto& m : members) hosts[m] = nullptr;
    children[group] = {{"hosts", hosts}};
  }
  all["children"] = children;
  return {{"all", all}};
}

nlohmann::ordered_json inventory_list(const Inventory& inv) {
  nlohmann::ordered_json out;
  nlohmann::ordered_json hostvars = nlohmann::ordered_json::object();
  for (const auto& [name, vars] : inv.hosts) hostvars[name] = vars;
  out["_meta"] = {{"hostvars", hostvars}};
  nlohmann::ordered_json children = nlohmann::ordered_json::array();
  for (const auto& [group, members] : inv.groups) children.push_back(group);
  nlohmann::ordered_json ungrouped = nlohmann::ordered_json::array();
  out["all"] = {{"children", children}, {"hosts", ungrouped}};
  for (const auto& [group, members] : inv.groups) out[group] = {{"hosts", members}};
  return out;
}

}  // namespace kumo
