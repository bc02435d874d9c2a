// Pieces every kumo command shares: config options, the environment, terminal detection.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "planner/config/diagnostics.h"
#include "planner/config/loader.h"
#include "planner/config/schema.h"

namespace kumo::cli {

struct GlobalOptions {
  int verbosity = 0;  // -v: 1, -vv: 2
  bool quiet = false;
};

// -f FILE, -var NAME=VALUE, --var-file FILE, shared by every command that reads kumo.yaml.
struct ConfigArgs {
  std::string file = "kumo.yaml";
  std::vector<std::string> vars;
  std::vector<std::string> var_files;

  void add_to(CLI::App& cmd);
  // Loads the config; diagnostics in the result (including bad -var syntax).
  LoadResult load() const;
};

std::map<std::string, std::string> environment_for_loader();

// --timeout SECONDS, the same for every command that talks to hosts: how long each host gets to
// connect. Positive only (zero and negatives are usage errors).
struct TimeoutArg {
  double seconds = 10;
  void add_to(CLI::App& cmd);
  std::chrono::milliseconds value() const {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  }
};

// Colour only on a terminal and never when NO_COLOR is set.
bool colour_enabled(int fd);

// Prints diagnostics to stderr in compiler form; returns the number of errors.
int print_diagnostics(const Diagnostics& diags);

// Rewrites Terraform-style "-var" into "--var" so CLI11 can parse it.
std::vector<std::string> normalize_args(int argc, char** argv);

void setup_logging(const GlobalOptions& opts);

// Each command registers itself and returns a callback that yields the exit code.
using Runner = std::function<int()>;
Runner add_validate_command(CLI::App& app, const GlobalOptions& global);
Runner add_schema_command(CLI::App& app, const GlobalOptions& global);
Runner add_plan_command(CLI::App& app, const GlobalOptions& global);
Runner add_apply_command(CLI::App& app, const GlobalOptions& global);
Runner add_destroy_command(CLI::App& app, const GlobalOptions& global);
Runner add_status_command(CLI::App& app, const GlobalOptions& global);
Runner add_images_command(CLI::App& app, const GlobalOptions& global);
Runner add_force_unlock_command(CLI::App& app, const GlobalOptions& global);

}  // namespace kumo::cli
