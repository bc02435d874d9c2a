#include "planner/lock_gate.h"

#include <exception>
#include <thread>

namespace kumo {

void LockGate::open(const std::string& host) {
  {
    std::lock_guard l(mu_);
    if (closed_ || done_) return;
    open_.insert(host);
  }
  changed_.notify_all();
}

void LockGate::close() {
  {
    std::lock_guard l(mu_);
    closed_ = true;
  }
  changed_.notify_all();
}

void LockGate::done(bool held) {
  {
    std::lock_guard l(mu_);
    done_ = true;
    if (!held) closed_ = true;
  }
  changed_.notify_all();
}

bool LockGate::reads_usable() const {
  std::lock_guard l(mu_);
  return !closed_ && !skipped_;
}

bool LockGate::wait(const std::string& host) {
  std::unique_lock l(mu_);
  changed_.wait(l, [&] { return closed_ || done_ || open_.count(host) > 0; });
  const bool go = !closed_ && open_.count(host) > 0;
  if (!go) skipped_ = true;
  return go;
}

ObservedHost GatedProvider::observe(const HostTarget& host, std::chrono::milliseconds timeout) {
  if (gate_.wait(host.name)) return inner_.observe(host, timeout);
  ObservedHost skipped;
  skipped.host = host.name;
  skipped.uri = host.uri;
  skipped.error = "host " + host.name + ": not read (the cluster lock was not taken there)";
  return skipped;
}

std::unique_ptr<ClusterLock> acquire_while_reading(
    HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
    const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
    std::vector<std::string>& warnings, const LockWait& wait, int parallelism, Provider& provider,
    const std::function<void(Provider&)>& read, const std::function<void()>& locked) {
  LockGate gate;
  std::unique_ptr<ClusterLock> lock;
  std::exception_ptr failed;
  {
    std::jthread locker([&] {
      try {
        lock = acquire_waiting(
            connector, hosts, cluster, me, timeout, stale, warnings,
            [&](const LockHeld& e) {
              gate.close();  // what was read under this try's locks is read again
              return wait && wait(e);
            },
            parallelism, [&gate](const std::string& host) { gate.open(host); });
      } catch (...) {
        failed = std::current_exception();
      }
      gate.done(lock != nullptr);
      if (lock && locked) locked();
    });
    GatedProvider gated(provider, gate);
    try {
      read(gated);
    } catch (...) {
      gate.close();
      throw;  // the locker joins first; the lock, if taken, is given back as it goes
    }
  }  // the locker joins here
  if (failed) std::rethrow_exception(failed);
  if (!gate.reads_usable()) read(provider);
  return lock;
}

}  // namespace kumo
