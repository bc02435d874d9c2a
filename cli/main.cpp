// kumo: declarative provisioning for a small private cloud of libvirt hosts.
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>

#include "cli/common.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "kumo_revision.h"

namespace {

// The last resort: whatever escapes every command's own handling ends here as one line and
// exit 1, never as a signal or an abort. Each known failure has its own message before this.
[[noreturn]] void internal_error(const std::string& what) {
  std::cerr << "kumo: internal error: " << what
            << " (this is a bug in kumo; please report it with the command line)\n";
  std::cerr.flush();
  std::_Exit(1);
}

int run(int argc, char** argv);

using kumo::cli::CommandLine;
using kumo::cli::GlobalOptions;

}  // namespace

int main(int argc, char** argv) {
  // Worker threads too: an exception escaping one would otherwise abort the process.
  std::set_terminate([] {
    if (auto e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        internal_error(x.what());
      } catch (...) {
      }
    }
    internal_error("unexpected termination");
  });
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    internal_error(e.what());
  } catch (...) {
    internal_error("unknown exception");
  }
}

namespace {

// What `--no-color` and `-C DIR` do, before any command runs.
bool apply_global(const GlobalOptions& global, const CommandLine& line) {
  using namespace kumo::cli;
  // One switch for every writer of colour (views, diagnostics, logs): NO_COLOR.
  if (global.no_color) setenv("NO_COLOR", "1", 1);
  for (const auto& dir : line.directories) {
    if (chdir(dir.c_str()) != 0) {
      std::cerr << "kumo: -C " << dir << ": " << std::strerror(errno) << "\n";
      return false;
    }
  }
  return true;
}

// stdout is a pipe whose reader has gone (`kumo schema | head -1`): the reader wanted no more.
bool stdout_reader_gone() {
  pollfd p{STDOUT_FILENO, POLLOUT, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

// kumo's command line: its own options, its commands, the help text around them.
std::vector<kumo::cli::Runner> define(CLI::App& app, GlobalOptions& global,
                                      std::string& directory) {
  using namespace kumo::cli;
  app.formatter(make_help_formatter());
  app.set_version_flag(
      "--version",
      [] {
        std::string text = version_text(KUMO_GIT_REVISION);
        return text.substr(0, text.size() - 1);  // CLI11 ends the line
      },
      "Show kumo's version (as kumo version) and exit");
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("-C", directory,
                 "Run as if kumo was started in DIR (repeatable: each relative "
                 "to the one before)");
  app.add_flag("-v,--verbose", global.verbosity, "More log output on stderr (-vv for even more)");
  app.add_flag("-q,--quiet", global.quiet, "Only errors on stderr");
  app.add_flag("--no-color", global.no_color, "No colour, even on a terminal (as NO_COLOR=1)");

  std::vector<Runner> runners = {
      add_validate_command(app, global),
      add_schema_command(app, global),
      add_plan_command(app, global),
      add_show_command(app, global),
      add_apply_command(app, global),
      add_destroy_command(app, global),
      add_status_command(app, global),
      add_hosts_command(app, global),
      add_ssh_command(app, global),
      add_console_command(app, global),
      add_inventory_command(app, global),
      add_images_command(app, global),
      add_force_unlock_command(app, global),
      add_import_command(app, global),
      add_completion_command(app, global),
      add_help_command(app, global),
      add_version_command(app, KUMO_GIT_REVISION),
  };

  // After the commands: CLI11 gives a command its parent's footer when it is added.
  app.footer(
      "Run 'kumo help COMMAND' or 'kumo COMMAND --help' for a command's options.\n"
      "Resources are named by address: vm.web-0, vm.web (every instance of web), network.front "
      "(docs/addresses.md).\n"
      "Exit status: 0 success, 1 error (usage errors too), 2 changes present with plan "
      "--detailed-exitcode.");
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (!sub->get_group().empty()) sub->group("Commands");  // not CLI11's "Subcommands"

  return runners;
}

// Parses the arranged command line; an exit status when that ends the run (help, version, a
// usage error), nullopt when a command is to run.
std::optional<int> parse(CLI::App& app, const CommandLine& line) {
  auto args = line.args;
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Usage errors are errors: exit 1, never CLI11's 105-114 (which `test $? -ne 1` took for
    // success). What was meant, and where to read more, instead of CLI11's one line.
    std::cerr << kumo::cli::usage_message(app, line, e) << "\n";
    return 1;
  }
  return std::nullopt;
}

int run(int argc, char** argv) {
  using namespace kumo::cli;
  // libvirt's remote transports write to a socket or to the pipe of an ssh child. When a host
  // dies mid-apply (its libvirtd stopped, the ssh session gone) that write must fail with EPIPE
  // and become that host's error, not kill the whole run (and every other host's work) by
  // SIGPIPE. libvirt asks its applications to ignore SIGPIPE; virsh does the same.
  std::signal(SIGPIPE, SIG_IGN);
  // Every host connection holds file descriptors: allow as many as the system lets this process
  // have. The engine does not count on it (its budget reads the limit), it only goes further.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  CLI::App app{
      "kumo: describe your libvirt hosts, images, networks and VMs in one file;\n"
      "plan shows what would change, apply makes it so.",
      "kumo"};
  GlobalOptions global;
  std::string directory;  // -C: taken out by arrange(), defined for help, man page, completion
  std::vector<Runner> runners = define(app, global, directory);

  std::vector<std::string> raw(argv + 1, argv + argc);
  if (!raw.empty() && raw.front() == "__complete") {
    return run_complete(app, std::vector<std::string>(raw.begin() + 1, raw.end()));
  }
  CommandLine line;
  try {
    line = arrange(app, raw);
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  if (const auto ended = parse(app, line)) return *ended;
  if (!apply_global(global, line)) return 1;
  setup_logging(global);
  int rc = 0;
  for (auto& run : runners) {
    rc = run();
    if (rc >= 0) break;
  }
  // With SIGPIPE ignored, a closed stdout is a failed write, not a signal: the command still
  // finishes its work. A reader that went away (`kumo schema | head -1`) wanted no more, as
  // with any Unix tool: that ends quietly. Any other lost output (a full disk) is an error.
  if (!std::cout.flush()) {
    if (stdout_reader_gone()) return rc < 0 ? 0 : rc;
    std::cerr << "kumo: error: cannot write to standard output (" << std::strerror(errno)
              << "); its output was lost\n";
    return rc > 0 ? rc : 1;
  }
  return rc < 0 ? 0 : rc;
}

}  // namespace
