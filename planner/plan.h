// A plan is plain data: what would change, where, and how disruptive it is. Views render it; the
// executor carries it out. `reason` is for people only: nothing may branch on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kumo {

enum class Action { NoOp, Create, Update, Replace, Delete };

// How a change touches a running guest, least to most.
enum class Disruption {
  None,      // nothing running is touched (new objects, stopped VMs, metadata)
  Live,      // applied to the running guest without interrupting it
  Restart,   // the guest is shut down and started again (or stopped)
  Recreate,  // the VM is destroyed and made anew (new root disk, cloud-init runs again)
};

const char* to_string(Action a);
const char* symbol(Action a);  // "+", "~", "-/+", "-", " "
const char* to_string(Disruption d);

struct AttributeChange {
  std::string name;
  nlohmann::json before;  // null: absent
  nlohmann::json after;
  bool forces_replacement = false;
  bool sensitive = false;
  bool drift = false;  // live state moved away from what kumo made; this change moves it back
};

struct ResourceChange {
  std::string address;  // vm.web-0, network.front, volume.web-0/root
  std::string kind;     // vm | network | volume
  std::string host;
  std::string parent;  // volumes: the VM they belong to ("" at the top level)
  Action action = Action::NoOp;
  Disruption disruption = Disruption::None;
  bool destroys_data = false;
  std::vector<AttributeChange> attributes;
  std::string reason;       // for display only
  nlohmann::json desired;   // the object as it should be (create/update/replace)
  nlohmann::json observed;  // the object as it is (update/replace/delete)
};

struct HostReport {
  std::string name, uri;
  std::string pool = "default";  // where kumo keeps volumes on this host
  bool reachable = false;
  bool skipped = false;  // unreachable and --skip-unreachable
  std::string error;
  bool kvm = false;
  std::string virt_type;  // what kumo will use there: kvm | qemu
  int domains = 0, networks = 0, volumes = 0;
  int api_calls = 0;
  double seconds = 0;
};

// A base image the plan needs on some hosts: fetched once into the local cache, then uploaded to
// each host that lacks it (hosts that already hold it are not touched).
struct ImagePlan {
  std::string name;        // in kumo.yaml
  std::string source;      // URL or path for display (credentials redacted)
  nlohmann::json fetch;    // what the executor fetches it from (image_config_to_json)
  std::string checksum;    // "sha256:<hex>"; "" when only the download tells (checksum: none)
  std::string volume;      // kumo-image_<algo>-<hex>: its name on every host ("" when unknown)
  bool cached = false;     // already in the local cache: no download
  std::uint64_t size = 0;  // bytes, 0 when unknown
  std::vector<std::string> upload_to;   // hosts that need it
  std::vector<std::string> present_on;  // hosts with VMs to create that already hold it
  std::vector<std::string> partial_on;  // hosts holding an upload that was cut short (redone)
  bool needed() const { return !upload_to.empty(); }
};

struct PlanSummary {
  int add = 0, change = 0, replace = 0, destroy = 0;
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
  std::string fingerprint;           // of the observed state the plan was made from
  std::vector<std::string> sensitive_values;

  // Top-level resources only (volumes count with their VM).
  PlanSummary summary() const;
  bool has_changes() const { return !changes.empty(); }
};

}  // namespace kumo
