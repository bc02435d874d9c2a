// Reading hosts while the cluster lock is being taken (kumo apply, destroy). A host is read once
// this run holds the lock there, or once the lock leaves it out (unreachable, its pool not there
// yet): what is read is what no other kumo changes until this run ends, and the reads of the first
// hosts locked overlap the locking of the others. When a try at the lock is refused or fails, the
// gate closes: reads not yet begun are skipped, and the run reads every host again once the lock
// is held (or gives up).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "planner/lock.h"
#include "providers/provider.h"

namespace kumo {

class LockGate {
 public:
  // `host` may be read now (ClusterLock's HostReady). Ignored once the gate is closed.
  void open(const std::string& host);
  // A try at the lock was refused or failed: what was read may be stale, and nothing more is.
  void close();
  // Taking the lock is over, held or given up (then the gate closes): nobody waits any more.
  void done(bool held);
  // Whether every read made through the gate can be used: the gate never closed, and no read was
  // skipped (a host the lock never opened).
  bool reads_usable() const;
  // Blocks until `host` is open (true), or the gate is closed or done without it (false: not to
  // be read).
  bool wait(const std::string& host);

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::set<std::string> open_;
  bool closed_ = false, done_ = false, skipped_ = false;
};

// A Provider whose reads of a host wait for the gate to open that host. A host the gate closed on
// comes back unreachable, saying it was not read.
class GatedProvider final : public Provider {
 public:
  GatedProvider(Provider& inner, LockGate& gate) : inner_(inner), gate_(gate) {}
  ObservedHost observe(const HostTarget& host, std::chrono::milliseconds timeout) override;

 private:
  Provider& inner_;
  LockGate& gate_;
};

// acquire_waiting() on a thread of its own while `read` reads the hosts (on the caller's), through
// a provider whose read of a host waits until this run holds the lock there: the hosts locked
// first are read while the others are being locked. When a try at the lock was refused (and
// `wait` tried again) or a host was not read through the gate, `read` runs again, plainly, once
// the lock is held. `locked` runs on the locking thread as soon as it is. Throws what
// acquire_waiting throws (once `read` has returned; what it made is then not to be used).
std::unique_ptr<ClusterLock> acquire_while_reading(
    HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
    const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
    std::vector<std::string>& warnings, const LockWait& wait, int parallelism, Provider& provider,
    const std::function<void(Provider&)>& read, const std::function<void()>& locked = {});

}  // namespace kumo
