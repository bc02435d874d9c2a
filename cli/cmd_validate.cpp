// kumo validate: check a cluster description and report every problem at once.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"

namespace kumo::cli {
namespace {

nlohmann::ordered_json to_json(const Diagnostics& diags) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& d : diags.sorted()) {
    out.push_back({{"file", d.location.file},
                   {"line", d.location.line},
                   {"column", d.location.column},
                   {"severity", d.severity == Severity::Error ? "error" : "warning"},
                   {"message", d.message}});
  }
  return out;
}

std::string summary(const ClusterConfig& cfg) {
  int instances = 0;
  for (const auto& vm : cfg.vms) instances += vm.instance_count();
  auto plural = [](size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
  };
  return cfg.file + ": valid: cluster " + quote(cfg.name) + ", " +
         plural(cfg.hosts.size(), "host") + ", " + plural(cfg.images.size(), "image") + ", " +
         plural(cfg.networks.size(), "network") + ", " +
         plural(static_cast<size_t>(instances), "VM");
}

}  // namespace

Runner add_validate_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd =
      app.add_subcommand("validate", "Check a cluster description; report every error at once");
  struct State {
    ConfigArgs config;
    bool json = false;
  };
  auto state = std::make_shared<State>();
  state->config.add_to(*cmd);
  cmd->add_flag("--json", state->json, "Print the errors and warnings as a JSON array on stdout");
  cmd->footer("Exit status: 0 when valid (warnings allowed), 1 when not.");
  return [state, &global, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    LoadResult result = state->config.load();
    if (state->json) {
      std::cout << to_json(result.diagnostics).dump(2) << "\n";
      return result.config ? 0 : 1;
    }
    print_diagnostics(result.diagnostics);
    if (!result.config) {
      const int n = result.diagnostics.error_count();
      const std::string file = state->config.file == "-" ? "<stdin>" : state->config.file;
      std::cerr << n << (n == 1 ? " error" : " errors") << " in " << file << "\n";
      return 1;
    }
    if (!global.quiet) std::cout << summary(*result.config) << "\n";
    return 0;
  };
}

Runner add_schema_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("schema", "Print the JSON Schema of kumo.yaml (for editors)");
  return [cmd]() -> int {
    if (!cmd->parsed()) return -1;
    std::cout << config_schema().dump(2) << "\n";
    return 0;
  };
}

}  // namespace kumo::cli
