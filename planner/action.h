// What a change does to an object, and how much it disturbs a running guest. Terraform's action
// set (create +, update ~, replace -/+, delete -); `move` and `adopt` join it later.
#pragma once

namespace kumo {

// Move: a VM (and its volumes) goes to another host with its data, live or cold.
// Adopt: a domain made by hand becomes kumo's, as it is (only its metadata is written).
enum class Action { NoOp, Create, Update, Replace, Delete, Move, Adopt };

// How a change touches a running guest, least to most.
enum class Disruption {
  None,      // nothing running is touched (new objects, stopped VMs, metadata)
  Live,      // applied to the running guest without interrupting it
  Restart,   // the guest is shut down and started again (or stopped)
  Recreate,  // the VM is destroyed and made anew (new root disk, cloud-init runs again)
};

const char* to_string(Action a);
const char* symbol(Action a);  // "+", "~", "-/+", "-", "->", " "
const char* to_string(Disruption d);
inline bool is_replace(Action a) {
  return a == Action::Replace;
}
inline Disruption worst(Disruption a, Disruption b) {
  return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

}  // namespace kumo
