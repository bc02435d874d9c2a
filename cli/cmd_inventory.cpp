// kumo inventory: the cluster's VMs as an Ansible inventory (YAML, JSON, or the dynamic-inventory
// protocol --list / --host NAME), with the routes and host keys kumo ssh uses.
#include <yaml-cpp/yaml.h>

#include <iostream>

#include "cli/common.h"
#include "cli/engine.h"
#include "planner/bounded.h"
#include "planner/inventory.h"
#include "planner/observe.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {
namespace {

void emit(YAML::Emitter& out, const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      emit(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& v : j) emit(out, v);
    out << YAML::EndSeq;
  } else if (j.is_null()) {
    out << YAML::Null;
  } else if (j.is_string()) {
    out << YAML::DoubleQuoted << j.get<std::string>();
  } else {
    out << j.dump();
  }
}

}  // namespace

Runner add_inventory_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "inventory",
      "Print an Ansible inventory of the cluster's running VMs (groups per vms: entry, host_<host>,"
      " net_<network>), with kumo ssh's routes and host keys");
  struct State {
    ConfigArgs config;
    CacheArgs cache;  // accepted like every command's, though this reads no image
    TimeoutArg timeout;
    std::string format = "yaml";
    bool list = false;
    std::string host;
  };
  auto s = std::make_shared<State>();
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  s->timeout.add_to(*cmd);
  cmd->add_option("--format", s->format, "yaml (default) or json")
      ->check(CLI::IsMember({"yaml", "json"}));
  auto* list = cmd->add_flag("--list", s->list,
                             "Ansible's dynamic-inventory protocol: every group and host (JSON)");
  cmd->add_option("--host", s->host,
                  "Ansible's dynamic-inventory protocol: one VM's variables (JSON)")
      ->excludes(list);
  return [s, &global, cmd]() -> int {
    (void)global;
    if (!cmd->parsed()) return -1;
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const DesiredCluster desired = expand(*loaded.config);
    const auto timeout = s->timeout.value();
    auto provider = make_libvirt_provider();
    const auto observed = observe_hosts(*provider, desired.targets(), timeout);
    int rc = 0;
    for (const auto& o : observed) {
      if (!o.reachable) {
        std::cerr << "kumo inventory: " << o.error << "\n";
        rc = 1;
      }
    }
    SshFiles files;
    try {
      files = prepare_ssh_files(desired);
    } catch (const std::runtime_error& e) {
      std::cerr << "kumo inventory: " << e.what() << "\n";
      return 1;
    }
    std::vector<LocatedVm> located;
    for (const auto& vm : desired.vms) {
      try {
        located.push_back(locate_vm(desired, observed, vm.instance));
      } catch (const AccessError& e) {
        if (s->host.empty()) std::cerr << "kumo inventory: left out " << e.what() << "\n";
      }
    }
    auto connector = make_connector();
    const auto routes = ssh::local_routes();
    std::vector<VmReach> reached(located.size());
    bounded_for(located.size(), kHostParallelism, [&](std::size_t i) {
      reached[i] =
          reach_vm(*connector, desired, observed, located[i], routes, files.known_hosts, timeout);
    });
    const Inventory inv = build_inventory(desired, reached, files);
    if (s->host.empty()) {
      for (const auto& why : inv.left_out) std::cerr << "kumo inventory: left out " << why << "\n";
    }
    if (!s->host.empty()) {
      const auto it = inv.hosts.find(s->host);
      if (it == inv.hosts.end()) {
        std::cerr << "kumo inventory: --host " << s->host
                  << ": no such VM in the inventory (kumo inventory --list shows them)\n";
        return 1;
      }
      std::cout << it->second.dump(2) << "\n";
      return rc;
    }
    if (s->list) {
      std::cout << inventory_list(inv).dump(2) << "\n";
      return rc;
    }
    const auto doc = inventory_document(inv);
    if (s->format == "json") {
      std::cout << doc.dump(2) << "\n";
      return rc;
    }
    YAML::Emitter out;
    emit(out, doc);
    std::cout << "# Ansible inventory of cluster " << desired.cluster << ", written by kumo "
              << "inventory from the hosts' live state.\n"
              << out.c_str() << "\n";
    return rc;
  };
}

}  // namespace kumo::cli
