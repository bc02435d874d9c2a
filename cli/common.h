// Pieces every kumo command shares: config options, the environment, terminal detection.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "planner/config/diagnostics.h"
#include "planner/config/loader.h"
#include "planner/config/schema.h"
#include "providers/observed.h"

namespace kumo::cli {

struct GlobalOptions {
  int verbosity = 0;  // -v: 1, -vv: 2
  bool quiet = false;
  bool no_color = false;  // --no-color: as NO_COLOR=1
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

// "30s", "5m", "1h", "1m30s", "500ms"; a bare number is seconds. nullopt if not a duration.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

// --lock-timeout DURATION (apply, destroy): how long to wait for a cluster lock another kumo
// holds; 0, the default, fails at once naming the holder.
struct LockTimeoutArg {
  std::string text = "0s";
  void add_to(CLI::App& cmd);
  std::chrono::milliseconds value() const { return parse_duration(text).value_or(kNoWait); }
  static constexpr std::chrono::milliseconds kNoWait{0};
};

// Colour only on a terminal and never when NO_COLOR is set.
bool colour_enabled(int fd);

// Prints diagnostics to stderr in compiler form; returns the number of errors.
int print_diagnostics(const Diagnostics& diags);

void setup_logging(const GlobalOptions& opts);
// -vv: what reading one host took, by phase (make_plan's HostObserved; any thread).
void log_host_read(const ObservedHost& host);

// Each command registers itself and returns a callback that yields the exit code.
using Runner = std::function<int()>;
Runner add_validate_command(CLI::App& app, const GlobalOptions& global);
Runner add_schema_command(CLI::App& app, const GlobalOptions& global);
Runner add_plan_command(CLI::App& app, const GlobalOptions& global);
Runner add_apply_command(CLI::App& app, const GlobalOptions& global);
Runner add_destroy_command(CLI::App& app, const GlobalOptions& global);
Runner add_status_command(CLI::App& app, const GlobalOptions& global);
Runner add_ssh_command(CLI::App& app, const GlobalOptions& global);
Runner add_inventory_command(CLI::App& app, const GlobalOptions& global);
Runner add_console_command(CLI::App& app, const GlobalOptions& global);
Runner add_hosts_command(CLI::App& app, const GlobalOptions& global);
Runner add_import_command(CLI::App& app, const GlobalOptions& global);
Runner add_images_command(CLI::App& app, const GlobalOptions& global);
Runner add_force_unlock_command(CLI::App& app, const GlobalOptions& global);
Runner add_show_command(CLI::App& app, const GlobalOptions& global);
Runner add_help_command(CLI::App& app, const GlobalOptions& global);
Runner add_version_command(CLI::App& app, const std::string& revision);
Runner add_completion_command(CLI::App& app, const GlobalOptions& global);

// kumo version: kumo's version, its git revision, libvirt built against and running.
std::string version_text(const std::string& revision);
// kumo __complete WORD...: what may come next, one per line (cli/completion.h).
int run_complete(const CLI::App& app, const std::vector<std::string>& words);

}  // namespace kumo::cli
