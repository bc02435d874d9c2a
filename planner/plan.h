// A plan is plain data: what would change, where, and how disruptive it is. Views render it; the
// executor carries it out. `reason` is for people only: nothing may branch on it.
#pragma once

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
  bool reachable = false;
  bool skipped = false;  // unreachable and --skip-unreachable
  std::string error;
  bool kvm = false;
  std::string virt_type;  // what kumo will use there: kvm | qemu
  int domains = 0, networks = 0, volumes = 0;
  int api_calls = 0;
  double seconds = 0;
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
  std::vector<std::string> warnings;
  std::vector<std::string> targets;  // --target, if any
  std::string fingerprint;           // of the observed state the plan was made from
  std::vector<std::string> sensitive_values;

  // Top-level resources only (volumes count with their VM).
  PlanSummary summary() const;
  bool has_changes() const { return !changes.empty(); }
};

}  // namespace kumo
