// Renderings of a plan: for people (terminal or CI log), for programs (JSON, docs/plan-json.md)
// and for pull-request comments (markdown). Pure functions of the plan.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "planner/plan.h"

namespace kumo::views {

struct ViewOptions {
  bool colour = false;
  bool show_sensitive = false;
};

std::string render_human(const Plan& plan, const ViewOptions& options);
nlohmann::ordered_json render_json(const Plan& plan, const ViewOptions& options);
std::string render_markdown(const Plan& plan, const ViewOptions& options);

// "image.debian-12: download 331 MiB (not cached) and upload to hv2, hv3 (hv1 has it)"
std::string image_line(const ImagePlan& image);

// "Plan: 3 to add, 1 to change, 1 to replace, 0 to destroy." or "No changes. ..."
std::string summary_line(const Plan& plan);

}  // namespace kumo::views
