// kumo hosts: what each host of the file is (versions, KVM or emulation, CPU) and what it can
// take (memory, pool, what placement still admits), read live from every host.
#include <iostream>

#include "cli/common.h"
#include "cli/engine.h"
#include "cli/views/hosts_view.h"
#include "planner/desired.h"
#include "planner/hosts_report.h"
#include "planner/observe.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {

Runner add_hosts_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "hosts",
      "Show what each host is (libvirt, QEMU, KVM or emulation, CPU) and what it can take "
      "(memory, pool, room placement still gives), read live");
  struct State {
    ConfigArgs config;
    CacheArgs cache;  // accepted like every command's, though hosts reads no image
    bool json = false;
    TimeoutArg timeout;
  };
  auto s = std::make_shared<State>();
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  cmd->add_flag("--json", s->json, "Print JSON (docs/hosts-json.md)");
  s->timeout.add_to(*cmd);
  return [s, &global, cmd]() -> int {
    (void)global;
    if (!cmd->parsed()) return -1;
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const DesiredCluster desired = expand(*loaded.config);
    auto provider = make_libvirt_provider();
    const auto observed = observe_host_details(*provider, desired.targets(), s->timeout.value());
    const HostsReport report = hosts_report(desired, observed);
    for (const auto& h : report.hosts) {
      if (!h.reachable) std::cerr << "kumo hosts: " << h.error << "\n";
    }
    if (s->json) {
      std::cout << views::render_hosts_json(report).dump(2) << "\n";
    } else {
      std::cout << views::render_hosts_human(report);
    }
    return report.all_reachable() ? 0 : 1;
  };
}

}  // namespace kumo::cli
