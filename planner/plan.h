// A plan is plain data: what would change, where, and how disruptive it is. Views render it; the
// executor carries it out. JSON lives only where plans are saved (plan_io) and in the views.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "planner/change.h"
#include "planner/config/model.h"

namespace kumo {

struct HostReport {
  std::string name, uri;
  bool uri_sensitive = false;    // shown masked (shown_uri)
  std::string pool = "default";  // where kumo keeps volumes on this host
  bool reachable = false;
  bool skipped = false;  // unreachable and --skip-unreachable
  std::string error;
  bool kvm = false;
  std::string virt_type;                       // what kumo will use there: kvm | qemu
  int domains = 0, networks = 0, volumes = 0;  // what the host has
  int api_calls = 0;
  double seconds = 0;
  bool drain = false;
  // How a live move reaches this host (hosts.<h>.migration): "" and "" for libvirt's default.
  std::string migration_socket_dir{}, migration_address{};
  // Only the targets' objects were read (kumo destroy --target of VMs; ObservedHost::scoped).
  bool scoped{false};
  HostTarget target() const { return HostTarget{name, uri, pool, uri_sensitive}; }
  std::string shown_uri() const;  // the uri for display: masked, or without a password
};

// A base image the plan needs on some hosts: fetched once into the local cache, then uploaded to
// each host that lacks it (hosts that already hold it are not touched).
struct ImagePlan {
  std::string name;           // in kumo.yaml
  std::string source;         // URL or path for display (credentials redacted)
  images::ImageSource fetch;  // what the executor fetches it from
  std::string checksum;       // "sha256:<hex>"; "" when only the download tells (checksum: none)
  std::string volume;         // kumo-image_<algo>-<hex>: its name on every host ("" when unknown)
  bool cached = false;        // already in the local cache: no download
  std::uint64_t size = 0;     // bytes, 0 when unknown
  std::vector<std::string> upload_to;   // hosts that need it
  std::vector<std::string> present_on;  // hosts with VMs to create that already hold it
  std::vector<std::string> partial_on;  // hosts holding an upload that was cut short (redone)
  bool needed() const { return !upload_to.empty(); }
  bool verified() const { return !fetch.checksum_none; }
};

struct PlanSummary {
  int add = 0, change = 0, replace = 0, destroy = 0, move = 0, adopt = 0;
};

struct Plan {
  static constexpr int kFormatVersion = 1;
  std::string cluster;
  std::string config_file;
  std::vector<HostReport> hosts;
  std::vector<ResourceChange> changes;  // no-ops excluded, dependency order
  std::vector<ImagePlan> images;        // base images the changes need
  std::vector<std::string> warnings;
  std::vector<std::string> targets;  // --target, if any
  bool destroy = false;              // made by kumo destroy (plan --destroy)
  std::string fingerprint;           // of the observed state the plan was made from

  // Top-level resources only (volumes count with their VM).
  PlanSummary summary() const;
  bool has_changes() const { return !changes.empty(); }
  const HostReport* find_host(const std::string& name) const;
};

}  // namespace kumo
