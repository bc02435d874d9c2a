// The cluster lock: held on the hosts themselves, so a laptop and CI cannot change one cluster
// at the same time (kumo keeps no state file, and no lock server either). On every host of the
// cluster, the lock is a small record kumo-lock_<cluster> that holds who took it: a libvirt
// secret of that usage (HostSession's lock records; a volume in the kumo pool on a host without a
// secret driver). Creating a record that exists fails atomically inside libvirt, which makes it a
// mutex. The first host in name order is locked first, alone, then all the others at once: two
// contenders never deadlock, nor hold parts of the lock each (the second is refused at the first
// host). `kumo plan` takes no lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "planner/bounded.h"
#include "planner/executor.h"
#include "providers/host_session.h"

namespace kumo {

struct LockHolder {
  std::string user, machine, command;  // machine: the hostname, for people
  long pid = 0;
  std::string since;  // UTC, "2026-11-26T15:01:02Z"
  std::string token;  // random: tells this holder's lock from a later one
  // The run, told apart for certain (planner/run_identity.h); "" and 0 in locks of older kumos.
  std::string machine_id{}, boot_id{}, pid_ns{};
  std::uint64_t start_time = 0;  // clock ticks after boot
  std::string describe() const;  // "root@ci-1 (pid 4242, kumo apply) since 2026-11-26T15:01:02Z"
  std::string to_json() const;
  static std::optional<LockHolder> from_json(const std::string& text);
};

class LockHeld : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This run lost its lock on a host while it applied (removed by hand, or taken by another): the
// apply stops before its next change.
class LockLost : public ApplyStopped {
 public:
  using ApplyStopped::ApplyStopped;
};

// Called (from the locking threads) as each host becomes safe to read for the run taking the
// lock: locked by it, or left out by the lock (unreachable, or its pool not there). Lets the
// reads of one host begin while the others are being locked (kumo apply, destroy).
using HostReady = std::function<void(const std::string& host)>;

// Says whether a holder is certainly gone (holder_is_stale): its lock is taken over.
using StaleCheck = std::function<bool(const LockHolder&)>;

// The record a taker of the stale lock of `stale` creates first (exclusively, so only one taker
// of one stale holder goes on): kumo-lock_<cluster>.takeover-<first 16 hex digits of its token>.
std::string takeover_volume_name(const std::string& cluster, const LockHolder& stale);

class ClusterLock {
 public:
  // Takes the lock of `cluster` on every host. Throws LockHeld naming the holder (and having
  // released whatever it took) when one host's lock is held; HostError when a host fails.
  // Unreachable hosts are left out (planning reports them), and cannot be changed in this run
  // (verify). A stale holder is taken over; see lock.cpp for how only one taker wins.
  static std::unique_ptr<ClusterLock> acquire(
      HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
      const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
      std::vector<std::string>& warnings, int parallelism = kHostParallelism,
      const HostReady& ready = {});
  // Whether this run holds the lock on `host` now, read through `session` (the executor's own
  // connection to it; nothing is cached). Throws LockLost naming the host and what is there
  // instead when the lock was removed or replaced, HostError when this run never locked `host`
  // (unreachable when the lock was taken) or the host cannot be asked. Steps that start together
  // on a host share one read: a caller takes the outcome of a read that began after it called
  // (so is as fresh as its own would be), else makes one.
  void verify(const std::string& host, HostSession& session) const;
  // Releases every host's lock that is still this holder's. Problems come back as warnings
  // (a host that went away keeps its lock until `kumo force-unlock`).
  std::vector<std::string> release();
  // Hosts left unlocked because their pool (where the lock lives on a host without a secret
  // driver) is not there: a pool kumo makes (lock_pools.h), or an unknown one, which the plan
  // reports. Steps there fail (verify).
  const std::vector<HostTarget>& missing_pools() const { return missing_pools_; }
  // kumo destroy: what is left on a host whose pool (and so the lock's place) is gone, say a
  // pool kumo made that the last destroy kept, is removed without the lock there.
  void change_missing_pools_unlocked() { unlocked_without_pool_ = true; }
  // Locks `hosts` too, as this same holder (hosts whose pool this run made once its plan was
  // accepted). Throws LockHeld or HostError as acquire does.
  void extend(const std::vector<HostTarget>& hosts, const StaleCheck& stale,
              std::vector<std::string>& warnings);
  ~ClusterLock();

  ClusterLock(const ClusterLock&) = delete;
  ClusterLock& operator=(const ClusterLock&) = delete;

 private:
  struct Held {
    HostTarget target;
    std::unique_ptr<HostSession> session;
    // The lock record's stamp as this run wrote it ("" when the host gives none): while it is
    // unchanged, verify needs no read of its text.
    std::string changed{};
  };
  ClusterLock(HostConnector& connector, std::string cluster, LockHolder me,
              std::chrono::milliseconds timeout)
      : connector_(connector),
        cluster_(std::move(cluster)),
        me_(std::move(me)),
        timeout_(timeout) {}
  // A host's verify reads, one at a time; `started` counts them, `outcome` is the last one's.
  struct Check {
    std::mutex mu;
    std::atomic<std::uint64_t> started{0};
    std::exception_ptr outcome;
  };
  Check& check_of(const std::string& host) const;
  void verify_now(const std::string& host, HostSession& session) const;
  HostConnector& connector_;
  std::string cluster_;
  LockHolder me_;
  std::chrono::milliseconds timeout_;
  std::vector<Held> held_;
  std::vector<HostTarget> missing_pools_;
  bool unlocked_without_pool_ = false;
  mutable std::mutex checks_mu_;
  mutable std::map<std::string, std::unique_ptr<Check>> checks_;
};

// Asked each time the lock is found held by another (live) holder: true to try again, after
// waiting as long as it likes; false to give up, and that LockHeld is thrown.
using LockWait = std::function<bool(const LockHeld&)>;

// ClusterLock::acquire, tried again while `wait` says so (kumo apply --lock-timeout). Whatever
// one try took is given back before the next.
std::unique_ptr<ClusterLock> acquire_waiting(
    HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
    const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
    std::vector<std::string>& warnings, const LockWait& wait, int parallelism = kHostParallelism,
    const HostReady& ready = {});

struct HostLock {
  std::string host;
  std::optional<LockHolder> holder;  // nullopt: no lock there
  // A takeover of `holder` that did not finish (its taker died midway): who began it.
  std::optional<LockHolder> taker;
  bool unreadable = false;  // a lock record whose text is not a holder
  std::string error;        // the host could not be asked
};

// Every host's lock of `cluster`, for kumo force-unlock (and status).
std::vector<HostLock> read_locks(HostConnector& connector, const std::vector<HostTarget>& hosts,
                                 const std::string& cluster, std::chrono::milliseconds timeout,
                                 int parallelism = kHostParallelism);
// Removes the lock of `cluster` on one host, whoever holds it, and the takeover record of its
// holder when a taker left one.
void break_lock(HostConnector& connector, const HostTarget& host, const std::string& cluster,
                std::chrono::milliseconds timeout);

}  // namespace kumo
