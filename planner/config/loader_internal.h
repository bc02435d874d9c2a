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

// One entry of a VM's networks: (load_nic.cpp): a name, or {network|bridge|direct, ...}.
void load_nic(Reader& r, const YAML::Node& item, const std::string& where, const ClusterConfig& cfg,
              const Sections& sections, std::vector<NicConfig>& out);

// adopt and volumes (load_adopt.cpp): false for any other key.
bool apply_adopt_field(Reader& r, const std::string& k, const YAML::Node& f, const std::string& fw,
                       const std::string& where, VmConfig& vm);
// An adopted VM's checks (and what defaults: gave it that does not apply).
void finish_adopt(Reader& r, const YAML::Node& node, const std::string& where, VmConfig& vm);

// A VM's firmware, secure_boot, tpm (load_machine.cpp): false for any other key.
bool apply_machine_field(Reader& r, const std::string& k, const YAML::Node& f,
                         const std::string& fw, VmConfig& vm);
// What only the whole VM (defaults applied) can tell: secure boot without UEFI.
void finish_machine(Reader& r, const std::string& where, VmConfig& vm);

// hosts.<h>.pools (load_pool.cpp).
void load_pools(Reader& r, const YAML::Node& node, const std::string& where, HostConfig& host);
// One entry of a VM's disks: (load_pool.cpp): SIZE or {size, pool}; false after an error.
bool load_data_disk(Reader& r, const YAML::Node& dn, const std::string& fw, DataDiskConfig& disk);

// hosts.<h>.migration (load_migration.cpp): fills `out` from {socket_dir} or {address}.
void load_migration(Reader& r, const YAML::Node& f, const std::string& what, MigrationConfig& out);

}  // namespace kumo::detail
