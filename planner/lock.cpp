#include "planner/lock.h"

#include <algorithm>
#include <thread>

#include <nlohmann/json.hpp>

#include "planner/bounded.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

constexpr std::size_t kMaxLockBytes = 4096;

std::string read_holder_text(HostSession& s, const std::string& volume) {
  return s.read_volume(volume, 0, kMaxLockBytes);
}

}  // namespace

std::string LockHolder::describe() const {
  return user + "@" + machine + " (pid " + std::to_string(pid) +
         (command.empty() ? "" : ", " + command) + ") since " + since;
}

std::string LockHolder::to_json() const {
  return nlohmann::json{{"user", user}, {"machine", machine}, {"command", command},
                        {"pid", pid},   {"since", since},     {"token", token}}
      .dump();
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
    return h;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a field of the wrong type: not a holder kumo wrote, so unreadable
  }
}

std::unique_ptr<ClusterLock> ClusterLock::acquire(
    HostConnector& connector, const std::vector<HostTarget>& hosts, const std::string& cluster,
    const LockHolder& me, std::chrono::milliseconds timeout, const StaleCheck& stale,
    std::vector<std::string>& warnings, int parallelism) {
  std::unique_ptr<ClusterLock> lock(new ClusterLock(connector, cluster, me, timeout));
  std::vector<HostTarget> sorted = hosts;
  std::sort(sorted.begin(), sorted.end(),
            [](const HostTarget& a, const HostTarget& b) { return a.name < b.name; });
  // Connect in parallel through the pool (an ssh connection takes a while), lock one after the
  // other. An unreachable host stays null: the plan says so (or skips it with --skip-unreachable).
  std::vector<std::unique_ptr<HostSession>> sessions(sorted.size());
  bounded_for(sorted.size(), parallelism, [&](std::size_t i) {
    try {
      sessions[i] = connector.connect(sorted[i], timeout);
    } catch (const HostError&) {
    }
  });
  const std::string volume = lock_volume_name(cluster);
  const std::string content = me.to_json();
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    std::unique_ptr<HostSession> s = std::move(sessions[i]);
    if (!s) continue;
    bool taken = false;
    for (int attempt = 0; attempt < 20 && !taken; ++attempt) {
      if (s->create_volume_exclusive(volume, content)) {
        taken = true;
        break;
      }
      std::string text;
      try {
        text = read_holder_text(*s, volume);
      } catch (const HostError&) {
        if (!s->volume(volume)) continue;  // released meanwhile: try again
        throw;
      }
      const auto holder = LockHolder::from_json(text);
      if (!holder) {
        // Being written by its taker this very moment (or garbled): look again shortly.
        if (attempt < 19) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        lock->release();
        throw LockHeld("cluster \"" + cluster + "\" is locked on host " + sorted[i].name +
                       " by an unreadable lock (volume " + volume + " in pool \"" + sorted[i].pool +
                       "\"); nothing was changed. If no kumo is running for "
                       "this cluster: kumo force-unlock");
      }
      if (stale && stale(*holder)) {
        warnings.push_back("host " + sorted[i].name + ": took over a stale lock of cluster \"" +
                           cluster + "\" held by " + holder->describe() +
                           " (that process is gone)");
        s->delete_volume(volume);
        continue;
      }
      lock->release();
      throw LockHeld("cluster \"" + cluster + "\" is locked on host " + sorted[i].name + " by " +
                     holder->describe() +
                     "; nothing was changed. Wait for it to finish; if that process is gone "
                     "(another machine crashed), run: kumo force-unlock");
    }
    if (!taken) {
      lock->release();
      throw LockHeld("cluster \"" + cluster + "\": could not take the lock on host " +
                     sorted[i].name + " (it kept changing hands); nothing was changed");
    }
    lock->held_.push_back({sorted[i], std::move(s)});
  }
  return lock;
}

std::vector<std::string> ClusterLock::release() {
  std::vector<std::string> problems;
  const std::string volume = lock_volume_name(cluster_);
  for (auto& h : held_) {
    try {
      // The connection may have died with its host's libvirtd: once more with a new one.
      std::unique_ptr<HostSession> fresh;
      HostSession* s = h.session.get();
      bool present = false;
      try {
        present = s->volume(volume).has_value();
      } catch (const HostError&) {
        fresh = connector_.connect(h.target, timeout_);
        s = fresh.get();
        present = s->volume(volume).has_value();
      }
      const std::string what =
          "host " + h.target.name + ": the lock of cluster \"" + cluster_ + "\"";
      if (!present) {
        problems.push_back(what + " was removed while this run held it (kumo force-unlock?)");
        continue;
      }
      const auto holder = LockHolder::from_json(read_holder_text(*s, volume));
      if (holder && holder->token == me_.token) {
        s->delete_volume(volume);
      } else {
        problems.push_back(what + " is held by " +
                           (holder ? holder->describe() : std::string("an unreadable lock")) +
                           " since this run took it; left to its holder");
      }
    } catch (const std::exception& e) {
      problems.push_back("host " + h.target.name + ": the lock of cluster \"" + cluster_ +
                         "\" could not be released (" + e.what() +
                         "); once the host is back, run: kumo force-unlock");
    }
  }
  held_.clear();
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
      if (!s->volume(volume)) return;
      out[i].holder = LockHolder::from_json(read_holder_text(*s, volume));
      out[i].unreadable = !out[i].holder;
    } catch (const HostError& e) {
      out[i].error = e.what();
    }
  });
  return out;
}

void break_lock(HostConnector& connector, const HostTarget& host, const std::string& cluster,
                std::chrono::milliseconds timeout) {
  auto s = connector.connect(host, timeout);
  s->delete_volume(lock_volume_name(cluster));
}

}  // namespace kumo
