// kumo: declarative provisioning for a small private cloud of libvirt hosts.
#include <iostream>

#include "cli/common.h"

int main(int argc, char** argv) {
  using namespace kumo::cli;
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
  for (auto& run : runners) {
    const int rc = run();
    if (rc >= 0) return rc;
  }
  return 0;
}
