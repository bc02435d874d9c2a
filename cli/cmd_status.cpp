// kumo status: every VM of the cluster as it is now, read live from every host.
#include <unistd.h>

#include <iostream>
#include <utility>

#include "cli/common.h"
#include "cli/engine.h"
#include "cli/views/apply_view.h"
#include "planner/access.h"
#include "planner/desired.h"
#include "planner/observe.h"
#include "providers/guest.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {
namespace {

struct VmStatus {
  std::string address, name, host, state;
  int vcpus = 0;
  std::uint64_t memory = 0;
  std::vector<std::string> addresses;
  std::vector<NetworkAddress> networks;
  std::string ready = "-";  // yes | no (why) | -
};

VmStatus probe(HostConnector& connector, const HostTarget& host, const ObservedDomain& d,
               const DesiredVm* vm, std::chrono::milliseconds timeout) {
  VmStatus v;
  v.address = d.owner->address;
  v.name = d.name;
  v.host = host.name;
  v.state = d.state;
  v.vcpus = d.vcpus;
  v.memory = d.memory;
  if (!d.active) {
    v.ready = "no (not running)";
    v.networks = network_addresses(d, vm, {});
    return v;
  }
  try {
    auto session = connector.connect(host, timeout);
    const auto live = session->addresses(d.name);
    v.addresses = address_ips(live);
    v.networks = network_addresses(d, vm, live);
    try {
      // `cloud-init status` is a Python program: seconds under software emulation.
      const auto st = cloud_init_status(*session, d.name, false, std::chrono::seconds(90));
      v.ready = st.done() ? "yes" : "no (cloud-init " + st.status + ")";
    } catch (const HostError&) {
      v.ready = "no (guest agent not answering)";
    }
  } catch (const HostError& e) {
    v.ready = std::string("? (") + e.what() + ")";
  }
  return v;
}

// kumo status --json (docs/status-json.md).
std::string status_json(const std::string& cluster, const std::vector<VmStatus>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    nlohmann::ordered_json networks = nlohmann::ordered_json::array();
    for (const auto& n : r.networks) {
      networks.push_back(
          {{"network", n.network},
           {"mac", n.mac},
           {"ip", n.ip.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(n.ip)},
           {"source",
            n.source.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(n.source)}});
    }
    out.push_back({{"address", r.address},
                   {"name", r.name},
                   {"host", r.host},
                   {"state", r.state},
                   {"vcpus", r.vcpus},
                   {"memory", r.memory},
                   {"addresses", r.addresses},
                   {"networks", networks},
                   {"ready", r.ready == "yes"},
                   {"ready_detail", r.ready}});
  }
  return nlohmann::ordered_json{{"schema_version", 1}, {"cluster", cluster}, {"vms", out}}.dump(2);
}

// One aligned row per VM.
void print_table(const std::vector<VmStatus>& rows) {
  std::vector<std::vector<std::string>> table = {
      {"ADDRESS", "HOST", "STATE", "VCPUS", "MEMORY", "IP", "READY"}};
  for (const auto& r : rows) {
    std::string addrs;
    for (const auto& a : r.addresses) addrs += (addrs.empty() ? "" : ",") + a;
    table.push_back({r.address, r.host, r.state, std::to_string(r.vcpus),
                     views::human_bytes(r.memory), addrs.empty() ? "-" : addrs, r.ready});
  }
  std::cout << views::aligned(table);
}

}  // namespace

Runner add_status_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "status",
      "Show every VM of the cluster, read live, by address (vm.web-0; --target takes it)");
  struct State {
    ConfigArgs config;
    CacheArgs cache;  // accepted like every command's, though status reads no image
    bool json = false;
    TimeoutArg timeout;
  };
  auto s = std::make_shared<State>();
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  cmd->add_flag("--json", s->json, "Print JSON");
  s->timeout.add_to(*cmd);
  return [s, &global, cmd]() -> int {
    (void)global;
    if (!cmd->parsed()) return -1;
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const ClusterConfig& cfg = *loaded.config;
    const auto timeout = s->timeout.value();
    auto provider = make_libvirt_provider();
    const DesiredCluster desired = expand(cfg);
    const std::vector<HostTarget> hosts = desired.targets();
    auto observed = observe_hosts(*provider, hosts, timeout);
    auto connector = make_connector();
    std::vector<std::pair<std::size_t, const ObservedDomain*>> vms;  // host index, domain
    int rc = 0;
    for (std::size_t i = 0; i < observed.size(); ++i) {
      if (!observed[i].reachable) {
        std::cerr << "kumo status: " << observed[i].error << "\n";
        rc = 1;
        continue;
      }
      for (const auto& d : observed[i].domains) {
        if (!d.owner || d.owner->cluster != cfg.name) continue;
        vms.emplace_back(i, &d);
      }
    }
    // Each VM is asked on its own connection: through the pool, never one per VM at once.
    std::vector<VmStatus> rows(vms.size());
    bounded_for(vms.size(), kHostParallelism, [&](std::size_t v) {
      const DesiredVm* vm = nullptr;
      for (const auto& x : desired.vms)
        if (x.instance == vms[v].second->name) vm = &x;
      rows[v] = probe(*connector, hosts[vms[v].first], *vms[v].second, vm, timeout);
    });
    std::sort(rows.begin(), rows.end(),
              [](const VmStatus& a, const VmStatus& b) { return a.name < b.name; });
    if (s->json) {
      std::cout << status_json(cfg.name, rows) << "\n";
      return rc;
    }
    if (rows.empty()) {
      std::cout << "No VMs of cluster " << cfg.name << " on any host.\n";
      return rc;
    }
    print_table(rows);
    return rc;
  };
}

}  // namespace kumo::cli
