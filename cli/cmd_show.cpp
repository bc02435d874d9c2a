// kumo show PLANFILE: a plan saved with kumo plan -o, shown as kumo plan showed it (the same
// views, the same masking), so one CI job can plan and another review it and apply it.
#include <unistd.h>

#include <iostream>

#include "cli/common.h"
#include "cli/views/plan_view.h"
#include "planner/plan_io.h"

namespace kumo::cli {

Runner add_show_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "show", "Show a plan saved with 'kumo plan -o FILE', as kumo plan showed it; reads no host");
  struct State {
    std::string plan_file;
    bool json = false, markdown = false, show_sensitive = false;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("PLANFILE", s->plan_file, "A plan saved with 'kumo plan -o FILE'")->required();
  auto* json_flag = cmd->add_flag("--json", s->json, "Print the plan as JSON (docs/plan-json.md)");
  cmd->add_flag("--markdown", s->markdown, "Print a summary and details for a pull-request comment")
      ->excludes(json_flag);
  cmd->add_flag("--show-sensitive", s->show_sensitive,
                "Show user-data and sensitive variables' values");
  cmd->footer("Exit status: 0 success, 1 error (a file that is not a plan saved by this kumo).");
  return [s, &global, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    std::string error;
    const auto plan = load_plan(s->plan_file, &error);
    if (!plan) {
      std::cerr << "kumo show: " << s->plan_file << ": " << error << "\n";
      return 1;
    }
    const views::ViewOptions view{colour_enabled(STDOUT_FILENO), s->show_sensitive};
    if (s->json) {
      std::cout << views::render_json(*plan, view).dump(2) << "\n";
    } else if (s->markdown) {
      std::cout << views::render_markdown(*plan, view);
    } else if (!global.quiet || plan->has_changes()) {
      std::cout << views::render_human(*plan, view);
    }
    return 0;
  };
}

}  // namespace kumo::cli
