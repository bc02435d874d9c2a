// Renderings of `kumo hosts`: an aligned table with a few lines per host (versions, CPU, why no
// KVM) for people, JSON for programs (docs/hosts-json.md). Pure functions of the report.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "planner/hosts_report.h"

namespace kumo::views {

inline constexpr int kHostsSchemaVersion = 1;

std::string render_hosts_human(const HostsReport& report);
nlohmann::ordered_json render_hosts_json(const HostsReport& report);

}  // namespace kumo::views
