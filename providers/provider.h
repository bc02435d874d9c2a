// The outside world, as the planner sees it. The real implementation talks to libvirt
// (providers/libvirt/); tests use an in-memory fake (tests/fake_provider.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "providers/observed.h"
#include "providers/read_scope.h"

namespace kumo {

struct HostTarget {
  std::string name;  // as in kumo.yaml
  std::string uri;
  std::string pool = "default";
  bool uri_sensitive = false;  // the uri came from a sensitive variable: never shown
  // Unset: read everything. Set: fetch only what it names (ObservedHost::scoped says so).
  std::shared_ptr<const ReadScope> scope{};
};

class Provider {
 public:
  virtual ~Provider() = default;

  // Reads everything kumo needs from one host: domains, networks, pools, volumes, capacity and
  // capabilities. Never throws: an unreachable host comes back with reachable=false and an error
  // that names the host and URI and says what to check. Must be safe to call for several hosts
  // from several threads at once. `timeout` bounds connecting.
  virtual ObservedHost observe(const HostTarget& host, std::chrono::milliseconds timeout) = 0;

  // observe(), and the facts only `kumo hosts` shows (HostFacts::detailed and below): a few more
  // calls that plan does not make. The default knows no more than observe().
  virtual ObservedHost observe_details(const HostTarget& host, std::chrono::milliseconds timeout) {
    return observe(host, timeout);
  }
};

}  // namespace kumo
