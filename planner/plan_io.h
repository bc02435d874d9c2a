// Saved plans (kumo plan -o FILE): every field of the plan, so apply can carry it out exactly,
// plus the fingerprint of the observed state it was made from. The only place a plan becomes
// JSON and back (the views render their own formats). A loaded plan is checked field by field.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "planner/plan.h"
#include "providers/images/source.h"

namespace kumo {

// The saved file's own format version (the JSON view's is Plan::kFormatVersion).
inline constexpr int kSavedPlanVersion = 4;

nlohmann::json plan_to_json(const Plan& plan);

// The fetch instructions for an image inside a plan (ImagePlan::fetch), and back.
nlohmann::json image_source_to_json(const images::ImageSource& image);
std::optional<images::ImageSource> image_source_from_json(const nlohmann::json& j,
                                                          std::string* error);
// nullopt and *error set when the document is not a saved plan of this format version.
std::optional<Plan> plan_from_json(const nlohmann::json& doc, std::string* error);

// Writes with mode 0600 (a saved plan holds cloud-init documents, possibly secrets).
bool save_plan(const Plan& plan, const std::string& path, std::string* error);
std::optional<Plan> load_plan(const std::string& path, std::string* error);

}  // namespace kumo
