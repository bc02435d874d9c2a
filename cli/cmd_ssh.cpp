// kumo ssh VM [-- COMMAND...]: log in to a VM by name, through its host when its network lives
// inside the host; the VM's host key is learned from the guest and checked strictly.
#include <iostream>

#include "cli/common.h"
#include "cli/engine.h"
#include "planner/access.h"
#include "planner/desired.h"
#include "planner/observe.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/ssh/spawn.h"
#include "providers/ssh/state.h"

namespace kumo::cli {

Runner add_ssh_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "ssh",
      "Log in to a VM by name, or run a command there (the system's ssh, through the VM's host "
      "when needed; host keys learned from the guest, checked strictly)");
  struct State {
    ConfigArgs config;
    CacheArgs cache;  // accepted like every command's, though this reads no image
    TimeoutArg timeout;
    std::string vm;
    std::vector<std::string> command;
    bool print = false;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("vm", s->vm, "The VM's name (web-0, or vm.web-0)")->required();
  cmd->add_option("command", s->command,
                  "What to run there instead of a login shell (after --, as ssh takes it)");
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  s->timeout.add_to(*cmd);
  cmd->add_flag("--print", s->print,
                "Print the ssh command line instead of running it (host keys are learned all the "
                "same)");
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
      const SshFiles files = prepare_ssh_files(desired);
      auto connector = make_connector();
      const VmReach r = reach_vm(*connector, desired, observed, located, ssh::local_routes(),
                                 files.known_hosts, timeout);
      if (!r.target) {
        std::cerr << "kumo ssh: " << r.error << "\n";
        return 1;
      }
      if (!r.keys_from.empty() && !s->print) {
        std::cerr << "kumo: learned " << r.vm << "'s SSH host keys from " << r.keys_from << "\n";
      }
      const auto argv = ssh_argv(*r.target, files, s->command);
      if (s->print) {
        std::cout << ssh::shell_join(argv) << "\n";
        return 0;
      }
      const ssh::SpawnResult run = ssh::run_watched(argv);
      if (run.exit_code == 255 && run.host_key_failed) {
        std::cerr << "kumo ssh: " << r.vm << " at " << r.target->address
                  << " answered with a host key other than the one kumo learned from the guest "
                     "itself (recorded in "
                  << files.known_hosts << " as " << r.target->host_key_alias
                  << "), so ssh refused to log in. Something else may answer at that address. "
                     "If the VM's host keys were changed on purpose, forget the old ones with: "
                     "ssh-keygen -f "
                  << files.known_hosts << " -R " << r.target->host_key_alias << "\n";
      }
      return run.exit_code;
    } catch (const AccessError& e) {
      std::cerr << "kumo ssh: " << e.what() << "\n";
    } catch (const std::runtime_error& e) {
      std::cerr << "kumo ssh: " << e.what() << "\n";
    }
    return 1;
  };
}

}  // namespace kumo::cli
