// Observes every host of a cluster, at most `parallelism` at once (planner/bounded.h).
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "planner/bounded.h"
#include "providers/provider.h"

namespace kumo {

// Called from the observing threads as each host finishes (for progress display).
using HostObserved = std::function<void(const ObservedHost&)>;

std::vector<ObservedHost> observe_hosts(Provider& provider, const std::vector<HostTarget>& hosts,
                                        std::chrono::milliseconds timeout,
                                        const HostObserved& on_done = {},
                                        int parallelism = kHostParallelism);

// The same, with the facts only `kumo hosts` shows (Provider::observe_details).
std::vector<ObservedHost> observe_host_details(Provider& provider,
                                               const std::vector<HostTarget>& hosts,
                                               std::chrono::milliseconds timeout,
                                               int parallelism = kHostParallelism);

}  // namespace kumo
