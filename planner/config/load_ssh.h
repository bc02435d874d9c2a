// Reading ssh: (top level, defaults:, a VM) and hosts.<h>.ssh_jump. Part of the loader.
#pragma once

#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

#include "planner/config/model.h"
#include "planner/config/reader.h"

namespace kumo::detail {

// Fills the fields written in `node` ({user, identity_file}) into `into`, leaving the others.
void load_ssh(Reader& r, const YAML::Node& node, const std::string& where, SshConfig& into);

// `direct`, "[user@]host[:port]", or {host, user, port, identity_file}. nullopt after an error.
std::optional<SshJumpConfig> load_ssh_jump(Reader& r, const YAML::Node& f,
                                           const std::string& where);

}  // namespace kumo::detail
