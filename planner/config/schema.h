// The JSON Schema of kumo.yaml. It is also the loader's list of known keys, so the schema that
// editors use and the keys the loader accepts cannot drift apart.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kumo {

const nlohmann::json& config_schema();

// Property names of one object in the schema: "" for the top level, or a $defs name such as
// "vm", "network", "cloud_init".
std::vector<std::string> schema_keys(std::string_view def);

}  // namespace kumo
