// kumo console VM: the VM's serial console through libvirt, over any URI; Ctrl-] leaves.
#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "cli/common.h"
#include "cli/engine.h"
#include "planner/access.h"
#include "planner/desired.h"
#include "planner/observe.h"
#include "providers/libvirt/console.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {
namespace {

// The terminal in raw mode while alive (when stdin is one), as it was afterwards.
class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    cfmakeraw(&raw);
    active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

}  // namespace

Runner add_console_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "console",
      "Attach to a VM's serial console by name, through libvirt (any URI); Ctrl-] leaves");
  struct State {
    ConfigArgs config;
    CacheArgs cache;  // accepted like every command's, though this reads no image
    TimeoutArg timeout;
    std::string vm;
    bool force = false;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("vm", s->vm, "The VM's name (web-0, or vm.web-0)")->required();
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  s->timeout.add_to(*cmd);
  cmd->add_flag("--force", s->force, "Take the console over from another session holding it");
  return [s, &global, cmd]() -> int {
    (void)global;
    if (!cmd->parsed()) return -1;
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const DesiredCluster desired = expand(*loaded.config);
    try {
      desired_vm(desired, s->vm);  // a name that is not in the file asks no host
      auto provider = make_libvirt_provider();
      const auto timeout = s->timeout.value();
      const auto observed = observe_hosts(*provider, desired.targets(), timeout);
      const LocatedVm located = locate_vm(desired, observed, s->vm);
      const ObservedDomain& d = *located.domain;
      const DesiredHost* host = desired.find_host(observed[located.host].host);
      if (host == nullptr) throw AccessError("vm." + d.name + "'s host is not in the file");
      if (!d.active) {
        throw AccessError("vm." + d.name + " on " + host->name + " is " + d.state +
                          ", so its console has nothing to show; start it with kumo apply "
                          "(running: true)");
      }
      std::cerr << "Connected to " << d.name << " on " << host->name
                << " (escape character is ^])\n";
      libvirt::ConsoleEnd end;
      {
        RawTerminal raw;
        end = libvirt::run_console(host->target(), d.name, s->force, timeout, STDIN_FILENO,
                                   STDOUT_FILENO);
      }
      std::cerr << "\n";
      if (!end.ok) {
        std::cerr << "kumo console: " << end.error << "\n";
        return 1;
      }
      return 0;
    } catch (const AccessError& e) {
      std::cerr << "kumo console: " << e.what() << "\n";
    }
    return 1;
  };
}

}  // namespace kumo::cli
