// kumo force-unlock: remove the cluster's lock from its hosts when its holder died elsewhere
// (a lock of a dead process on this machine is taken over by apply on its own).
#include <unistd.h>

#include <iostream>

#include "cli/common.h"
#include "cli/engine.h"
#include "planner/desired.h"
#include "planner/lock.h"

namespace kumo::cli {

Runner add_force_unlock_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "force-unlock",
      "Remove the cluster's apply lock from every host (when its holder is certainly gone)");
  struct State {
    ConfigArgs config;
    bool auto_approve = false;
    TimeoutArg timeout;
  };
  auto s = std::make_shared<State>();
  s->config.add_to(*cmd);
  cmd->add_flag("--auto-approve", s->auto_approve, "Do not ask for confirmation");
  s->timeout.add_to(*cmd);
  cmd->footer(
      "Exit status: 0 the lock is gone (or was not held), 1 error. A running apply whose lock is "
      "removed stops before its next change: only remove the lock of a process that is gone.");
  return [s, &global, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const auto& cfg = *loaded.config;
    const auto timeout = s->timeout.value();
    auto connector = make_lock_connector();  // reads and removes locks, a host at a time
    const auto hosts = expand(cfg).targets();
    const auto locks = read_locks(*connector, hosts, cfg.name, timeout);
    int held = 0, failed = 0;
    for (const auto& l : locks) {
      if (!l.error.empty()) {
        std::cerr << "host " << l.host << ": cannot be asked: " << l.error << "\n";
        ++failed;
      } else if (l.holder || l.unreadable) {
        std::cout << "host " << l.host << ": locked by "
                  << (l.holder ? l.holder->describe() : std::string("an unreadable lock"));
        if (l.taker) {
          std::cout << "; a takeover of it by "
                    << (l.taker->token.empty() ? std::string("another kumo") : l.taker->describe())
                    << " did not finish (lock record " << takeover_volume_name(cfg.name, *l.holder)
                    << ")";
        }
        std::cout << "\n";
        ++held;
      } else if (!global.quiet) {
        std::cout << "host " << l.host << ": not locked\n";
      }
    }
    if (held == 0) {
      std::cout << "cluster \"" << cfg.name << "\" is not locked on any reachable host\n";
      return failed ? 1 : 0;
    }
    if (!s->auto_approve) {
      if (isatty(STDIN_FILENO) != 1) {
        std::cerr << "kumo force-unlock: refusing without confirmation: stdin is not a "
                     "terminal. Pass --auto-approve.\n";
        return 1;
      }
      std::cout << "\nRemove the lock? A kumo still running with it stops before its next change. "
                   "Only 'yes' is accepted: "
                << std::flush;
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "yes") {
        std::cout << "force-unlock cancelled; nothing was changed.\n";
        return 1;
      }
    }
    for (std::size_t i = 0; i < locks.size(); ++i) {
      if (!locks[i].holder && !locks[i].unreadable) continue;
      try {
        break_lock(*connector, hosts[i], cfg.name, timeout);
        std::cout << "host " << hosts[i].name << ": lock removed\n";
      } catch (const HostError& e) {
        std::cerr << "host " << hosts[i].name << ": " << e.what() << "\n";
        ++failed;
      }
    }
    return failed ? 1 : 0;
  };
}

}  // namespace kumo::cli
