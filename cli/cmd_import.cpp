// kumo import HOST/DOMAIN [--name NAME]: a domain made by hand, printed as the vms: entry that
// adopts it (paste it into the file; plan then shows `adopt`).
#include <iostream>

#include "cli/common.h"
#include "cli/engine.h"
#include "planner/config/names.h"
#include "planner/desired.h"
#include "planner/import.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {

Runner add_import_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "import",
      "Print the vms: entry that adopts a domain made by hand (HOST/DOMAIN), to paste into the "
      "file: its vCPUs, memory, firmware, NICs and disks, read live");
  struct State {
    ConfigArgs config;
    CacheArgs cache;  // accepted like every command's, though import reads no image
    TimeoutArg timeout;
    std::string what;
    std::string name;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("domain", s->what, "HOST/DOMAIN: a host of the file and a domain on it")
      ->required();
  cmd->add_option("--name", s->name,
                  "The VM's name in the file (default: the domain's; a different one renames "
                  "the domain when it is adopted, which needs it shut off)");
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  s->timeout.add_to(*cmd);
  return [s, &global, cmd]() -> int {
    (void)global;
    if (!cmd->parsed()) return -1;
    const auto slash = s->what.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == s->what.size()) {
      std::cerr << "kumo import: " << quote(s->what)
                << " is not HOST/DOMAIN (a host of the file, a domain on it: hv1/legacy-db)\n";
      return 1;
    }
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const DesiredCluster desired = expand(*loaded.config);
    const std::string host = s->what.substr(0, slash);
    const DesiredHost* h = desired.find_host(host);
    if (!h) {
      std::string names;
      for (const auto& x : desired.hosts) names += (names.empty() ? "" : ", ") + x.name;
      std::cerr << "kumo import: " << quote(host) << " is not a host of " << desired.file
                << " (hosts: " << names << ")\n";
      return 1;
    }
    auto provider = make_libvirt_provider();
    const ObservedHost observed = provider->observe(h->target(), s->timeout.value());
    if (!observed.reachable) {
      std::cerr << "kumo import: " << observed.error << "\n";
      return 1;
    }
    try {
      std::cout << import_entry(observed,
                                {desired.cluster, host, s->what.substr(slash + 1), s->name});
    } catch (const ImportError& e) {
      std::cerr << "kumo import: " << e.what() << "\n";
      return 1;
    }
    return 0;
  };
}

}  // namespace kumo::cli
