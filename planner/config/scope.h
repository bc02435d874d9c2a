// The part of a file a command needs, before it is expanded.
#pragma once

#include <string>
#include <vector>

#include "planner/config/model.h"

namespace kumo {

// What a kumo destroy whose targets are all VMs (vm.web, vm.web-0) needs of the file: `cfg` with
// only the vms: entries a target can name, so that thousands of others are never expanded (their
// cloud-init rendered) only to be left out of the plan: a scoped destroy plans its targets alone
// (planner.cpp, narrow_to_targets). Any other target, or one the file does not have (its error's
// did-you-mean wants every name), or no target at all: `cfg` as it is. Plan and apply --target
// need the whole file (what a target needs, addresses, placement): do not call it for them.
ClusterConfig destroy_scoped_config(const ClusterConfig& cfg,
                                    const std::vector<std::string>& targets);

}  // namespace kumo
