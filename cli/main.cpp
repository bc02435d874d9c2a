// kumo: declarative provisioning for a small private cloud of libvirt hosts.
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "cli/common.h"

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
  app.set_version_flag("--version", std::string("kumo ") + KUMO_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  app.add_flag("-v,--verbose", global.verbosity, "More log output on stderr (-vv for even more)");
  app.add_flag("-q,--quiet", global.quiet, "Only errors on stderr");
  app.footer("Run 'kumo COMMAND --help' for a command's options.");

  std::vector<Runner> runners = {
      add_validate_command(app, global), add_schema_command(app, global),
      add_plan_command(app, global),     add_apply_command(app, global),
      add_destroy_command(app, global),  add_status_command(app, global),
      add_images_command(app, global),   add_force_unlock_command(app, global),
  };

  auto args = normalize_args(argc, argv);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  setup_logging(global);
  int rc = 0;
  for (auto& run : runners) {
    rc = run();
    if (rc >= 0) break;
  }
  // With SIGPIPE ignored, a closed stdout (`kumo plan | head -1`) is a failed write, not a
  // signal: the command still finishes its work, and the lost output is reported here.
  if (!std::cout.flush()) {
    std::cerr
        << "kumo: error: cannot write to standard output (closed pipe?); its output was lost\n";
    return rc > 0 ? rc : 1;
  }
  return rc < 0 ? 0 : rc;
}

}  // namespace
