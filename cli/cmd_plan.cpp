// kumo plan: read every host, diff against the file, show what would change.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>

#include <spdlog/spdlog.h>

#include "cli/common.h"
#include "cli/engine.h"
#include "cli/views/plan_view.h"
#include "planner/plan_io.h"
#include "planner/planner.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {
namespace {

double seconds_between(std::chrono::steady_clock::time_point from,
                       std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

struct PlanState {
  ConfigArgs config;
  CacheArgs cache;
  bool json = false, markdown = false, detailed_exitcode = false, skip_unreachable = false,
       show_sensitive = false;
  TimeoutArg timeout;
  std::string out;
  std::vector<std::string> targets;
  std::vector<std::string> replace;
};

int run_plan(PlanState& s, const GlobalOptions& global) {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  LoadResult loaded = s.config.load();
  print_diagnostics(loaded.diagnostics);
  if (!loaded.config) return 1;
  auto provider = make_libvirt_provider();
  PlanOptions options;
  options.timeout = s.timeout.value();
  options.skip_unreachable = s.skip_unreachable;
  options.targets = s.targets;
  options.replace = s.replace;
  std::string cache_error;
  const std::string cache_dir = s.cache.resolve(&cache_error);
  if (cache_dir.empty()) {
    std::cerr << "kumo plan: " << cache_error << "\n";
    return 1;
  }
  options.resolve_image = make_image_resolver(cache_dir);
  DesiredCluster desired = expand(*loaded.config);
  const auto loaded_at = Clock::now();
  std::mutex mu;
  auto read_at = loaded_at;  // when the last host was read
  PlanResult result = make_plan(std::move(desired), *provider, options, [&](const ObservedHost& h) {
    const std::lock_guard lock(mu);
    read_at = std::max(read_at, Clock::now());
    log_host_read(h);
  });
  const auto planned_at = Clock::now();
  spdlog::debug(
      "plan: file loaded in {:.3f} s, hosts read in {:.3f} s, placed and diffed in "
      "{:.3f} s",
      seconds_between(started, loaded_at), seconds_between(loaded_at, read_at),
      seconds_between(read_at, planned_at));
  if (!result.plan) {
    print_diagnostics(result.errors);
    std::cerr << "kumo plan: no plan (" << result.errors.error_count() << " error"
              << (result.errors.error_count() == 1 ? "" : "s")
              << "); nothing was changed on any host\n";
    return 1;
  }
  const Plan& plan = *result.plan;
  views::ViewOptions view{colour_enabled(STDOUT_FILENO), s.show_sensitive};
  if (s.json) {
    std::cout << views::render_json(plan, view).dump(2) << "\n";
  } else if (s.markdown) {
    std::cout << views::render_markdown(plan, view);
  } else if (!global.quiet || plan.has_changes()) {
    std::cout << views::render_human(plan, view);
  }
  std::cout << std::flush;
  spdlog::debug("plan: rendered in {:.3f} s", seconds_between(planned_at, Clock::now()));
  if (!s.out.empty()) {
    std::string error;
    if (!save_plan(plan, s.out, &error)) {
      std::cerr << "kumo plan: " << error << "\n";
      return 1;
    }
    spdlog::info("saved the plan to {} (apply it with: kumo apply {})", s.out, s.out);
  }
  if (s.detailed_exitcode) return plan.has_changes() ? 2 : 0;
  return 0;
}

}  // namespace

Runner add_plan_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd =
      app.add_subcommand("plan", "Read every host's live state and show what apply would change");
  auto state = std::make_shared<PlanState>();
  state->config.add_to(*cmd);
  state->cache.add_to(*cmd);
  auto* json_flag =
      cmd->add_flag("--json", state->json, "Print the plan as JSON (docs/plan-json.md)");
  cmd->add_flag("--markdown", state->markdown,
                "Print a summary and details for a pull-request comment")
      ->excludes(json_flag);
  cmd->add_flag("--detailed-exitcode", state->detailed_exitcode,
                "Exit 0 when there are no changes, 2 when there are, 1 on error");
  state->timeout.add_to(*cmd);
  cmd->add_flag(
      "--skip-unreachable", state->skip_unreachable,
      "Plan the reachable hosts when some cannot be reached (they are named in the plan)");
  cmd->add_flag("--show-sensitive", state->show_sensitive,
                "Show user-data and sensitive variables' values");
  cmd->add_option("-o,--out", state->out, "Save the plan to FILE for 'kumo apply FILE'");
  cmd->add_option("--target", state->targets,
                  "Limit the plan to this resource and its dependencies (repeatable)");
  cmd->add_option("--replace", state->replace,
                  "Plan to recreate this VM (vm.web-1) although nothing changed (repeatable)");
  cmd->footer(
      "Exit status: 0 success (with --detailed-exitcode: 0 no changes, 2 changes), 1 error.");

  return [state, &global, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return run_plan(*state, global);
  };
}

}  // namespace kumo::cli
