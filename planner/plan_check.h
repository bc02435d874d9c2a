// A saved plan is checked field by field before anything acts on it: every name that becomes a
// libvirt object's name, a file on a host or a file in the image cache must be one kumo itself
// would have written for this cluster (an edited `../../etc/passwd` goes nowhere), and every
// checksum is an algorithm and hex digits of its length.
#pragma once

#include "planner/plan.h"

namespace kumo {

// Throws std::invalid_argument naming the field and what is wrong with it.
void check_plan_fields(const Plan& plan);

// A checksum as plans write it: "sha256:<64 hex>" or "sha512:<128 hex>" (lowercase).
bool is_checksum_text(const std::string& text);

}  // namespace kumo
