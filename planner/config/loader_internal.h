// Pieces of the loader shared between its .cpp files. Not part of the public interface.
#pragma once

#include <yaml-cpp/yaml.h>

#include "planner/config/loader.h"
#include "planner/config/reader.h"

namespace kumo::detail {

// Which sections could be read at all. A reference into a section that is itself broken (say,
// networks: written as a list) is not reported again for every VM.
struct Sections {
  bool hosts = true, images = true, networks = true;
};

bool load_hosts(Reader& r, const YAML::Node& node, const LoadOptions& options, ClusterConfig& cfg);
bool load_images(Reader& r, const YAML::Node& node, ClusterConfig& cfg);
bool load_networks(Reader& r, const YAML::Node& node, const Sections& sections, ClusterConfig& cfg);
void load_vms(Reader& r, const YAML::Node& vms, const YAML::Node& defaults,
              const Sections& sections, ClusterConfig& cfg);
// Checks that span objects: overlapping CIDRs, duplicate addresses, placement feasibility.
void validate_cluster(const ClusterConfig& cfg, Diagnostics& diags);

// Context prefixes used in messages: vm "web", network "front", ...
std::string ctx(const char* kind, const std::string& name);

// hosts.<h>.migration (load_migration.cpp): fills `out` from {socket_dir} or {address}.
void load_migration(Reader& r, const YAML::Node& f, const std::string& what, MigrationConfig& out);

}  // namespace kumo::detail
