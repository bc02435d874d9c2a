#include "planner/lock.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "planner/bounded.h"
#include "providers/digest.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

constexpr std::size_t kMaxLockBytes = 4096;
// How often an unreadable lock is looked at before giving up (a takeover by another kumo is
// waited for twice as long), and how long between two looks.
constexpr int kAttempts = 20;
constexpr std::chrono::milliseconds kPause{100};

// What holds lock record `volume` now: nullopt when there is no such record; a holder without a
// token when its text is not one (being written, or garbled).
std::optional<LockHolder> current_holder(HostSession& s, const std::string& volume) {
  std::string text;
  for (int attempt = 1;; ++attempt) {
    try {
      auto read = s.read_lock_record(volume, kMaxLockBytes);
      if (!read) return std::nullopt;
      text = std::move(*read);
      break;
    } catch (const HostError&) {
      // Removed meanwhile, or removed and made anew by a taker between the look and the read:
      // look again (a host that really fails keeps failing).
      if (attempt >= 3) throw;
    }
  }
  auto holder = LockHolder::from_json(text);
  return holder ? *holder : LockHolder{};
}

// The lock record's stamp now, when its text (read after the stamp) is `token`'s: the record
// this run wrote. "" otherwise, or when the host gives no stamps: verify then reads the text
// every time.
std::string own_stamp(HostSession& s, const std::string& volume, const std::string& token) {
  const auto stamp = s.lock_record_stamp(volume);
  if (!stamp || stamp->empty()) return "";
  const auto holder = current_holder(s, volume);
  return holder && holder->token == token ? *stamp : "";
}

bool is_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string takeover_volume_name(const std::string& cluster, const LockHolder& stale) {
  // Cluster names have no '.', so this is never another cluster's lock. A token kumo did not
  // make (not 16 lowercase hex digits at least) is hashed into some.
  const std::string id = stale.token.size() >= 16 && is_hex(stale.token.substr(0, 16))
                             ? stale.token.substr(0, 16)
                             : sha256_hex(stale.token).substr(0, 16);
  return lock_volume_name(cluster) + ".takeover-" + id;
}

std::string LockHolder::describe() const {
  return user + "@" + machine + " (pid " + std::to_string(pid) +
         (command.empty() ? "" : ", " + command) + ") since " + since;
}

std::string LockHolder::to_json() const {
  nlohmann::json j{{"user", user}, {"machine", machine}, {"command", command},
                   {"pid", pid},   {"since", since},     {"token", token}};
  if (!machine_id.empty()) {
    j["machine_id"] = machine_id;
    j["boot_id"] = boot_id;
    j["pid_ns"] = pid_ns;
    j["start_time"] = start_time;
  }
  return j.dump();
}

std::optional<LockHolder> LockHolder::from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("token")) return std::nullopt;
  try {
    LockHolder h;
    h.user = j.value("user", "?");
    h.machine = j.value("machine", "?");
    h.command = j.value("command", "");
    h.pid = j.value("pid", 0L);
    h.since = j.value("since", "?");
    h.token = j.value("token", "");
    h.machine_id = j.value("machine_id", "");
    h.boot_id = j.value("boot_id", "");
    h.pid_ns = j.value("pid_ns", "");
    h.start_time = j.value("start_time", std::uint64_t{0});
    return h;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a field of the wrong type: not a holder kumo wrote, so unreadable
  }
}

namespace {

enum class Takeover { Taken, Lost, Busy };

// One host's lock being taken: what it needs, and where its warnings go.
struct HostTake {
  HostSession& s;
  const HostTarget& host;
  const std::string& cluster;
  const LockHolder& me;
  const StaleCheck& stale;
  std::vector<std::string>& warnings;
  std::string volume = lock_volume_name(cluster), content = me.to_json();
};

// Taking over the lock of a stale holder X, when several kumos find X at once. Reading X and
// then deleting it is not enough: two takers both read X, one deletes it and creates its own
// lock, the other then deletes that one and creates its own, and both hold the lock. The
// only atomic operation is creating a record that must not exist, so the right to delete X is
// that: the taker that creates the record takeover_volume_name(X) (named after X's token, so
// one per stale holder) may go on, every other taker of X backs off. It then re-reads the lock
// and deletes it only if it still is X, creates its own lock exclusively, and deletes the
// takeover record last. Why at most one kumo ever holds the lock:
//  - creating the lock record is exclusive, so only deletes could let a second one in;
//  - a lock held by a live kumo is deleted only by that kumo (release) or by force-unlock;
//  - a stale X is deleted only by the creator T of X's takeover record, after reading X there
//    while holding it: nobody else deletes X meanwhile (other takers of X hold no takeover
//    record; takers of other holders see X, not their holder), so what T deletes is X;
//  - once X is deleted its token never comes back, so a late taker that creates X's takeover
//    record after T removed it re-reads, finds another holder (or none) and deletes nothing;
//  - after T deleted X, T and anyone else race for the lock by exclusive creation: one wins,
//    and the others read the winner, who is not stale, and are refused naming it.
// A taker that dies between creating the takeover record and deleting it leaves X locked and the
// takeover record there: others wait for it, then are refused naming it (force-unlock).
Takeover take_over(HostTake& h, const LockHolder& stale, const std::string& takeover) {
  if (!h.s.create_lock_record(takeover, h.content)) return Takeover::Busy;
  Takeover result = Takeover::Lost;
  try {
    const auto now = current_holder(h.s, h.volume);
    if (now && now->token == stale.token) {
      h.s.delete_lock_record(h.volume);
      if (h.s.create_lock_record(h.volume, h.content)) result = Takeover::Taken;
    }
  } catch (...) {
    try {
      h.s.delete_lock_record(takeover);
    } catch (const std::exception&) {
    }
    throw;
  }
  try {
    h.s.delete_lock_record(takeover);
  } catch (const HostError& e) {
    if (result != Takeover::Taken) throw;
    // Harmless once the lock is this run's: nobody holds X any more.
    h.warnings.push_back("host " + h.host.name + ": lock record " + takeover +
                         " could not be removed (" + e.what() + "); kumo force-unlock removes it");
  }
  return result;
}

std::string held_message(const HostTake& h, const LockHolder& holder) {
  return "cluster \"" + h.cluster + "\" is locked on host " + h.host.name + " by " +
         holder.describe() +
         "; nothing was changed. Wait for it to finish; if that process is gone (another machine "
         "crashed), run: kumo force-unlock";
}

std::string unfinished_takeover_message(HostTake& h, const LockHolder& stale,
                                        const std::string& takeover) {
  const auto taker = current_holder(h.s, takeover);
  return "cluster \"" + h.cluster + "\" is locked on host " + h.host.name + " by " +
         stale.describe() + ", a stale lock whose takeover by " +
         (taker && !taker->token.empty() ? taker->describe() : std::string("another kumo")) +
         " did not finish (lock record " + takeover +
         "); nothing was changed. If that kumo is gone: kumo force-unlock";
}

// Takes the lock on one host, taking a stale holder's over; throws LockHeld saying why not.
void take_host_lock(HostTake& h) {
  int unreadable = 0;
  std::string busy;  // the takeover record another kumo holds, at the last look
  std::optional<LockHolder> busy_holder;
  for (int attempt = 0; attempt < 2 * kAttempts; ++attempt) {
    if (h.s.create_lock_record(h.volume, h.content)) return;
    const auto holder = current_holder(h.s, h.volume);
    busy.clear();
    if (!holder) continue;  // released meanwhile: try again
    if (holder->token.empty()) {
      // Being written by its taker this very moment (or garbled): look again shortly.
      if (++unreadable >= kAttempts) {
        throw LockHeld("cluster \"" + h.cluster + "\" is locked on host " + h.host.name +
                       " by an unreadable lock (lock record " + h.volume +
                       "); nothing was changed. If no kumo is running for this cluster: kumo "
                       "force-unlock");
      }
      std::this_thread::sleep_for(kPause);
      continue;
    }
    if (!h.stale || !h.stale(*holder)) throw LockHeld(held_message(h, *holder));
    const std::string takeover = takeover_volume_name(h.cluster, *holder);
    switch (take_over(h, *holder, takeover)) {
      case Takeover::Taken:
        h.warnings.push_back("host " + h.host.name + ": took over a stale lock of cluster \"" +
                             h.cluster + "\" held by " + holder->describe() +
                             " (that process is gone)");
        return;
      case Takeover::Lost:
        continue;  // the lock changed hands meanwhile: look again
      case Takeover::Busy:
        busy = takeover;  // another kumo is taking it over: its lock shows in a moment
        busy_holder = holder;
        std::this_thread::sleep_for(kPause);
        continue;
    }
  }
  if (!busy.empty()) throw LockHeld(unfinished_takeover_message(h, *busy_holder, busy));
  throw LockHeld("cluster \"" + h.cluster + "\": could not take the lock on host " + h.host.name +
                 " (it kept changing hands); nothing was changed");
}

// Connects to every host of `sorted` (in name order) and locks it with `take` (false: refused or
// failed there), each host by one worker of the pool, in parallel: an ssh connection takes a
// while. An unreachable host keeps a null session and is ready (to be read, and said so) at once.
void connect_and_take(HostConnector& connector, const std::vector<HostTarget>& sorted,
                      std::chrono::milliseconds timeout, int parallelism,
                      std::vector<std::unique_ptr<HostSession>>& sessions,
                      const std::function<bool(std::size_t)>& take, const HostReady& ready) {
  // The first reachable host (in name order) is the cluster's gate: locked alone, first. Whoever
  // holds it takes all the others at once; a contender is refused there and holds nothing, so
  // two never hold parts of the lock each. Each host is locked as soon as the gate allows:
  // a worker waits to know which host is the gate, then for the gate's outcome.
  enum { kPending, kUp, kDown };
  std::vector<int> connected(sorted.size(), kPending);
  int gate = kPending;  // kUp: the gate is taken; kDown: refused or failed there
  std::mutex mu;
  std::condition_variable changed;
  bounded_for(sorted.size(), parallelism, [&](std::size_t i) {
    try {
      sessions[i] = connector.connect(sorted[i], timeout);
    } catch (const HostError&) {
    }
    {
      std::lock_guard l(mu);
      connected[i] = sessions[i] ? kUp : kDown;
    }
    changed.notify_all();
    if (!sessions[i]) {
      if (ready) ready(sorted[i].name);
      return;
    }
    // The gate is the first host (by name) not found unreachable: known once the hosts before
    // it have failed to connect and it has connected. Hosts after it need not wait for theirs.
    auto first_not_down = [&] {
      std::size_t j = 0;
      while (j < i && connected[j] == kDown) ++j;
      return j;
    };
    std::unique_lock l(mu);
    changed.wait(l, [&] {
      const std::size_t j = first_not_down();
      return j == i || connected[j] == kUp;
    });
    const bool is_gate = first_not_down() == i;
    if (!is_gate) {
      changed.wait(l, [&] { return gate != kPending; });
      if (gate == kDown) return;
    }
    l.unlock();
    const bool ok = take(i);
    if (is_gate) {
      {
        std::lock_guard g(mu);
        gate = ok ? kUp : kDown;
      }
      changed.notify_all();
    }
  });
}

}  // namespace

std::unique_ptr<ClusterLock> ClusterLock::acquire(
    HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
    const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
    std::vector<std::string>& warnings, int parallelism, const HostReady& ready) {
  std::unique_ptr<ClusterLock> lock(new ClusterLock(connector, cluster, me, timeout));
  std::vector<HostTarget> sorted = hosts;
  std::sort(sorted.begin(), sorted.end(),
            [](const HostTarget& a, const HostTarget& b) { return a.name < b.name; });
  // An unreachable host keeps a null session: the plan says so (or skips it with
  // --skip-unreachable).
  std::vector<std::unique_ptr<HostSession>> sessions(sorted.size());
  // One host's outcome, kept apart while hosts are locked at once.
  struct Taken {
    bool held = false, missing_pool = false;
    std::vector<std::string> warnings;
    std::exception_ptr error;
    std::string changed;
  };
  std::vector<Taken> taken(sorted.size());
  const std::string volume = lock_volume_name(cluster);
  auto take_one = [&](std::size_t i) {
    Taken& t = taken[i];
    HostSession& s = *sessions[i];
    try {
      HostTake take{s, sorted[i], cluster, me, stale, t.warnings};
      try {
        take_host_lock(take);
      } catch (const HostError&) {
        // No pool to keep the lock in: one kumo makes once the plan is accepted (extend), or an
        // unknown pool the plan reports at its line. Any other failure is the host's.
        if (s.pool(sorted[i].pool)) throw;
        t.missing_pool = true;
        s.lend_connection();
        if (ready) ready(sorted[i].name);
        return;
      }
      t.held = true;
      // The stamps verify compares with, saving it a read of the content (a stream) before
      // each change. A host that fails here is verified by its content.
      try {
        t.changed = own_stamp(s, volume, me.token);
      } catch (const HostError&) {
      }
      // Idle from now until release (verify goes through the steps' sessions): the reads of this
      // host may use the lock's connection, then its steps.
      s.lend_connection();
      if (ready) ready(sorted[i].name);
    } catch (...) {
      t.error = std::current_exception();
    }
  };
  connect_and_take(
      connector, sorted, timeout, parallelism, sessions,
      [&](std::size_t i) {
        take_one(i);
        return !taken[i].error;
      },
      ready);
  // In host order: what was taken is kept (and given back as `lock` goes, if refused or failed
  // elsewhere), warnings as they came per host, the first host's refusal or failure thrown.
  std::exception_ptr first;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    Taken& t = taken[i];
    for (auto& w : t.warnings) warnings.push_back(std::move(w));
    if (t.error && !first) first = t.error;
    if (t.missing_pool) lock->missing_pools_.push_back(sorted[i]);
    if (t.held) lock->held_.push_back({sorted[i], std::move(sessions[i]), std::move(t.changed)});
  }
  if (first) std::rethrow_exception(first);
  return lock;
}

std::unique_ptr<ClusterLock> acquire_waiting(
    HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
    const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
    std::vector<std::string>& warnings, const LockWait& wait, int parallelism,
    const HostReady& ready) {
  for (;;) {
    try {
      return ClusterLock::acquire(connector, hosts, cluster, me, timeout, stale, warnings,
                                  parallelism, ready);
    } catch (const LockHeld& e) {
      if (!wait || !wait(e)) throw;
    }
  }
}

ClusterLock::Check& ClusterLock::check_of(const std::string& host) const {
  const std::lock_guard l(checks_mu_);
  auto& c = checks_[host];
  if (!c) c = std::make_unique<Check>();
  return *c;
}

void ClusterLock::verify(const std::string& host, HostSession& session) const {
  Check& c = check_of(host);
  const std::uint64_t asked = c.started.load();
  const std::lock_guard l(c.mu);
  // A read numbered after `asked` began after this caller asked, and has ended (it held the
  // mutex): its outcome is this caller's too.
  if (c.started.load() > asked) {
    if (c.outcome) std::rethrow_exception(c.outcome);
    return;
  }
  ++c.started;
  c.outcome = nullptr;
  try {
    verify_now(host, session);
  } catch (...) {
    c.outcome = std::current_exception();
    throw;
  }
}

void ClusterLock::verify_now(const std::string& host, HostSession& session) const {
  const bool locked =
      std::any_of(held_.begin(), held_.end(), [&](const Held& h) { return h.target.name == host; });
  const bool no_pool = std::any_of(missing_pools_.begin(), missing_pools_.end(),
                                   [&](const HostTarget& t) { return t.name == host; });
  if (!locked && no_pool && unlocked_without_pool_) return;
  if (!locked) {
    throw HostError("host " + host +
                    ": not locked by this run (it could not be reached when "
                    "the lock of cluster \"" +
                    cluster_ +
                    "\" was taken), so it is not changed now; once it answers, run kumo apply "
                    "again");
  }
  const std::string what = "the lock of cluster \"" + cluster_ + "\" on host " + host;
  const std::string removed = what + " was removed while this apply held it (kumo force-unlock?)";
  const std::string volume = lock_volume_name(cluster_);
  // The very record this run wrote, not written since: this run's (a lock made anew, or written
  // to, has another stamp). Otherwise its text says whose it is.
  const auto held = std::find_if(held_.begin(), held_.end(),
                                 [&](const Held& h) { return h.target.name == host; });
  if (held != held_.end() && !held->changed.empty()) {
    const auto stamp = session.lock_record_stamp(volume);
    if (!stamp) throw LockLost(removed);
    if (*stamp == held->changed) return;
  }
  const auto now = current_holder(session, volume);
  if (!now) throw LockLost(removed);
  if (now->token != me_.token) {
    throw LockLost(what + " was taken from this apply while it ran: it is held by " +
                   (now->token.empty() ? std::string("an unreadable lock") : now->describe()) +
                   " now (kumo force-unlock, then another kumo?)");
  }
}

void ClusterLock::extend(const std::vector<HostTarget>& hosts, const StaleCheck& stale,
                         std::vector<std::string>& warnings) {
  auto more = acquire(connector_, hosts, cluster_, me_, timeout_, stale, warnings);
  if (!more->missing_pools_.empty()) {
    throw HostError("host " + more->missing_pools_.front().name + ": storage pool \"" +
                    more->missing_pools_.front().pool + "\" is still missing after making it");
  }
  for (auto& h : more->held_) held_.push_back(std::move(h));
  more->held_.clear();
  std::erase_if(missing_pools_, [&](const HostTarget& t) {
    return std::any_of(hosts.begin(), hosts.end(),
                       [&](const HostTarget& h) { return h.name == t.name; });
  });
}

std::vector<std::string> ClusterLock::release() {
  const std::string volume = lock_volume_name(cluster_);
  // One host after another would cost a few round trips each (over ssh, each a while): every
  // host at once (up to the bound), the problems in host order.
  std::vector<std::optional<std::string>> problem(held_.size());
  bounded_for(held_.size(), kHostParallelism, [&](std::size_t i) {
    Held& h = held_[i];
    // Closing a connection is a round trip (over ssh, an ssh session's end too): each host's is
    // closed here, all at once, not one after the other as held_ goes.
    struct Close {
      Held& h;
      ~Close() { h.session.reset(); }
    } close{h};
    try {
      // The connection may have died with its host's libvirtd: once more with a new one.
      std::unique_ptr<HostSession> fresh;
      HostSession* s = h.session.get();
      std::optional<std::string> present;
      try {
        present = s->lock_record_stamp(volume);
      } catch (const HostError&) {
        // The pool the lock was in went with this run (a destroy of the pool kumo made).
        bool pool_gone = false;
        try {
          pool_gone = !s->pool(h.target.pool).has_value();
        } catch (const HostError&) {
        }
        if (pool_gone) return;
        fresh = connector_.connect(h.target, timeout_);
        s = fresh.get();
        present = s->lock_record_stamp(volume);
      }
      const std::string what =
          "host " + h.target.name + ": the lock of cluster \"" + cluster_ + "\"";
      if (!present) {
        problem[i] = what + " was removed while this run held it (kumo force-unlock?)";
        return;
      }
      // The very file this run wrote (its times unchanged, as verify checks them) needs no read
      // of its content; otherwise whose it is decides.
      const bool own_file = !h.changed.empty() && *present == h.changed;
      const auto holder =
          own_file ? std::optional<LockHolder>(me_)
                   : LockHolder::from_json(s->read_lock_record(volume, kMaxLockBytes).value_or(""));
      if (holder && holder->token == me_.token) {
        s->delete_lock_record(volume);
      } else {
        problem[i] = what + " is held by " +
                     (holder ? holder->describe() : std::string("an unreadable lock")) +
                     " since this run took it; left to its holder";
      }
    } catch (const std::exception& e) {
      problem[i] = "host " + h.target.name + ": the lock of cluster \"" + cluster_ +
                   "\" could not be released (" + e.what() +
                   "); once the host is back, run: kumo force-unlock";
    }
  });
  held_.clear();
  std::vector<std::string> problems;
  for (auto& p : problem) {
    if (p) problems.push_back(std::move(*p));
  }
  return problems;
}

ClusterLock::~ClusterLock() {
  release();
}

std::vector<HostLock> read_locks(HostConnector& connector, const std::vector<HostTarget>& hosts,
                                 const std::string& cluster, std::chrono::milliseconds timeout,
                                 int parallelism) {
  std::vector<HostLock> out(hosts.size());
  bounded_for(hosts.size(), parallelism, [&](std::size_t i) {
    out[i].host = hosts[i].name;
    try {
      auto s = connector.connect(hosts[i], timeout);
      const std::string volume = lock_volume_name(cluster);
      const auto text = s->read_lock_record(volume, kMaxLockBytes);
      if (!text) return;
      out[i].holder = LockHolder::from_json(*text);
      out[i].unreadable = !out[i].holder;
      if (out[i].holder) {
        const std::string takeover = takeover_volume_name(cluster, *out[i].holder);
        if (s->lock_record_stamp(takeover)) {
          out[i].taker = current_holder(*s, takeover).value_or(LockHolder{});
        }
      }
    } catch (const HostError& e) {
      out[i].error = e.what();
    }
  });
  return out;
}

void break_lock(HostConnector& connector, const HostTarget& host, const std::string& cluster,
                std::chrono::milliseconds timeout) {
  auto s = connector.connect(host, timeout);
  const std::string volume = lock_volume_name(cluster);
  const auto holder = current_holder(*s, volume);
  s->delete_lock_record(volume);
  // After the lock: a taker still at work then finds no stale holder to delete.
  if (holder && !holder->token.empty()) {
    s->delete_lock_record(takeover_volume_name(cluster, *holder));
  }
}

}  // namespace kumo
