// The cluster lock during an apply (ClusterLock::verify as the executor's before_change): a
// lock removed or replaced on a host stops the apply before its next change there, and a host
// the lock left out (unreachable when it was taken) is never changed in that run.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "planner/lock.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

namespace {

constexpr std::chrono::milliseconds kTimeout{100};
const LockHolder kMe{"alice", "laptop", "kumo apply", 100, "2026-11-26T10:00:00Z", "tok-a"};
const LockHolder kOther{"ci", "runner", "kumo apply", 200, "2026-11-26T10:00:05Z", "tok-b"};

std::vector<HostTarget> hosts_of(const ClusterConfig& cfg) {
  std::vector<HostTarget> out;
  for (const auto& h : cfg.hosts) out.push_back({h.name, h.uri, h.pool});
  return out;
}

ExecOptions guarded_by(const ClusterLock& lock) {
  ExecOptions opts;
  opts.parallelism = 1;  // one step after the other: "the next change" is well defined
  opts.before_change = [&lock](const std::string& host, HostSession& s) { lock.verify(host, s); };
  return opts;
}

// Calls made on `host` from the index `from` of the call log on.
std::vector<std::string> calls_on(Lab& lab, const std::string& host, std::size_t from) {
  std::vector<std::string> out;
  const auto all = lab.connector.calls();
  for (std::size_t i = from; i < all.size(); ++i)
    if (all[i].rfind(host + " ", 0) == 0) out.push_back(all[i]);
  return out;
}

}  // namespace

TEST_CASE("a lock removed or replaced mid-apply stops the apply before its next change", "[lock]") {
  Lab lab;
  auto text = kCluster;
  REQUIRE(lab.apply(lab.plan(config(text))).success());
  text.replace(text.find("count: 3"), 8, "count: 1");  // web-1 (hv2) and web-2 (hv3) go
  const auto cfg = config(text);
  const Plan plan = lab.plan(cfg);
  std::vector<std::string> warnings;
  auto lock =
      ClusterLock::acquire(lab.connector, hosts_of(cfg), "fest", kMe, kTimeout, {}, warnings);
  REQUIRE(lock);
  const bool replace = GENERATE(false, true);
  // As the first VM is deleted, its host's lock is removed by hand (virsh vol-delete), or
  // removed and taken by another kumo.
  std::string host;
  std::size_t mark = 0;
  lab.connector.on_call = [&](const std::string& call) {
    if (!host.empty() || call.find(" delete_domain ") == std::string::npos) return;
    host = call.substr(0, call.find(' '));
    mark = lab.connector.calls().size();
    std::lock_guard<std::recursive_mutex> state(lab.state_mu);
    std::erase_if(lab.host(host).volumes,
                  [](const ObservedVolume& v) { return v.name == "kumo-lock_fest"; });
    if (replace) {
      lab.add_volume(host, "kumo-lock_fest", 100);
      std::lock_guard<std::mutex> contents(lab.connector.mu);
      lab.connector.contents[host + "/kumo-lock_fest"] = kOther.to_json();
    }
  };
  std::vector<ExecEvent> events;
  const ExecResult r = lab.apply(plan, guarded_by(*lock), &events);
  INFO(failures(r));
  REQUIRE_FALSE(host.empty());
  const std::string what = "the lock of cluster \"fest\" on host " + host;
  CHECK_THAT(r.stopped,
             Catch::StartsWith(what + (replace ? " was taken from this apply while it ran: it is "
                                                 "held by " +
                                                     kOther.describe() + " now"
                                               : " was removed while this apply held it (kumo "
                                                 "force-unlock?)")) &&
                 Catch::Contains("; stopped before delete volume.") &&
                 Catch::EndsWith(" on " + host + " (no step started after it)"));
  CHECK_FALSE(r.success());
  // Nothing changed on that host after its lock went but what the step in flight did (the
  // domain's serial log goes with it): the check read the lock, and the disks are still there.
  int in_flight = 0;
  for (const auto& c : calls_on(lab, host, mark)) {
    const bool serial_log = c.rfind(host + " delete_volume kumo_fest_", 0) == 0 &&
                            c.find("_serial.log") != std::string::npos;
    in_flight += serial_log ? 1 : 0;
    CHECK((c == host + " read_volume kumo-lock_fest" || serial_log));
  }
  CHECK(in_flight == 1);
  // One step failed (the one the check came before); none started after it: every step that had
  // not started by then is skipped, saying why.
  REQUIRE(r.count(StepStatus::Failed) == 1);
  const auto failed = std::find_if(r.steps.begin(), r.steps.end(), [](const StepOutcome& s) {
    return s.status == StepStatus::Failed;
  });
  std::set<std::string> started;
  for (const auto& e : events) {
    if (e.kind != ExecEvent::Kind::Started) continue;
    CHECK_FALSE(started.count(failed->step));  // this one started after the failed one
    started.insert(e.step);
  }
  for (const auto& s : r.steps) {
    if (!started.count(s.step))
      CHECK_THAT(s.message, Catch::StartsWith("skipped: the apply stopped at delete"));
  }
  CHECK(r.count(StepStatus::Skipped) >= 1);
  // The lock there is not this run's: release leaves it alone and says so.
  CHECK(lock->release().size() == 1);
}

TEST_CASE("a host left out of the lock is not changed in that run", "[lock]") {
  Lab lab;
  const auto cfg = config(kCluster);
  lab.unreachable.insert("hv2");
  std::vector<std::string> warnings;
  auto lock =
      ClusterLock::acquire(lab.connector, hosts_of(cfg), "fest", kMe, kTimeout, {}, warnings);
  REQUIRE(lock);
  lab.unreachable.clear();  // back by the time the hosts are read
  const Plan plan = lab.plan(cfg);
  ExecOptions opts = guarded_by(*lock);
  opts.parallelism = 10;
  const ExecResult r = lab.apply(plan, opts);
  INFO(failures(r));
  CHECK(r.stopped.empty());
  for (const auto& s : r.steps) {
    if (s.host != "hv2") {
      CHECK(s.status == StepStatus::Ok);
    } else if (s.status == StepStatus::Failed) {
      CHECK(s.message ==
            "host hv2: not locked by this run (it could not be reached when the lock of cluster "
            "\"fest\" was taken), so it is not changed now; once it answers, run kumo apply again");
    } else {
      CHECK(s.status == StepStatus::Skipped);
    }
  }
  for (const auto& c : calls_on(lab, "hv2", 0)) {
    INFO(c);
    CHECK((c.find(" connect") != std::string::npos || c.find(" read_volume") != std::string::npos));
  }
  CHECK(lab.connector.count("hv1 define_domain") == 1);
  CHECK(lab.connector.count("hv3 define_domain") == 1);
}

TEST_CASE("while the lock is the very file this run wrote, no check reads its content", "[lock]") {
  // Each check compares the lock volume's stamps (its file's times) with those it had once this
  // run had written it: a lookup, no stream.
  Lab lab;
  CHECK(lab.connector.volume_stamps);
  const auto cfg = config(kCluster);
  std::vector<std::string> warnings;
  auto lock =
      ClusterLock::acquire(lab.connector, hosts_of(cfg), "fest", kMe, kTimeout, {}, warnings);
  REQUIRE(lock);
  const std::size_t mark = lab.connector.calls().size();
  const ExecResult r = lab.apply(lab.plan(cfg), guarded_by(*lock));
  INFO(failures(r));
  REQUIRE(r.success());
  for (const std::string host : {"hv1", "hv2", "hv3"}) {
    for (const auto& c : calls_on(lab, host, mark))
      CHECK(c != host + " read_volume kumo-lock_fest");
  }
  // Nor does release: the lock is the very file, so it is deleted without a read.
  const std::size_t before_release = lab.connector.calls().size();
  CHECK(lock->release().empty());
  for (const std::string host : {"hv1", "hv2", "hv3"}) {
    const auto calls = calls_on(lab, host, before_release);
    CHECK(std::count(calls.begin(), calls.end(), host + " read_volume kumo-lock_fest") == 0);
    CHECK(std::count(calls.begin(), calls.end(), host + " delete_volume kumo-lock_fest") == 1);
  }
}

TEST_CASE("where the host gives no file times, release reads whose the lock is first", "[lock]") {
  Lab lab;
  lab.connector.volume_stamps = false;
  std::vector<std::string> warnings;
  auto lock = ClusterLock::acquire(lab.connector, hosts_of(config(kCluster)), "fest", kMe, kTimeout,
                                   {}, warnings);
  REQUIRE(lock);
  {
    std::lock_guard<std::mutex> contents(lab.connector.mu);
    lab.connector.contents["hv2/kumo-lock_fest"] = kOther.to_json();
  }
  const std::size_t mark = lab.connector.calls().size();
  const auto problems = lock->release();
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::StartsWith("host hv2: the lock of cluster \"fest\" is held by "));
  for (const std::string host : {"hv1", "hv2", "hv3"}) {
    const auto calls = calls_on(lab, host, mark);
    CHECK(std::count(calls.begin(), calls.end(), host + " read_volume kumo-lock_fest") == 1);
    CHECK(std::count(calls.begin(), calls.end(), host + " delete_volume kumo-lock_fest") ==
          (host == "hv2" ? 0 : 1));
  }
}

TEST_CASE("a lock written over where it is stops the apply before its next change", "[lock]") {
  // Not removed and made anew: the same volume, its content replaced (its file's times change).
  Lab lab;
  const auto cfg = config(kCluster);
  std::vector<std::string> warnings;
  auto lock =
      ClusterLock::acquire(lab.connector, hosts_of(cfg), "fest", kMe, kTimeout, {}, warnings);
  REQUIRE(lock);
  std::string host;
  lab.connector.on_call = [&](const std::string& call) {
    if (!host.empty() || call.find(" create_volume ") == std::string::npos) return;
    host = call.substr(0, call.find(' '));
    std::lock_guard<std::mutex> contents(lab.connector.mu);
    lab.connector.contents[host + "/kumo-lock_fest"] = kOther.to_json();
  };
  const ExecResult r = lab.apply(lab.plan(cfg), guarded_by(*lock));
  REQUIRE_FALSE(host.empty());
  CHECK_THAT(r.stopped, Catch::StartsWith("the lock of cluster \"fest\" on host " + host +
                                          " was taken from this apply while it ran: it is held "
                                          "by " +
                                          kOther.describe() + " now"));
  CHECK_FALSE(r.success());
}

TEST_CASE("where the host gives no file times, every check reads the lock's content", "[lock]") {
  Lab lab;
  lab.connector.volume_stamps = false;
  const auto cfg = config(kCluster);
  std::vector<std::string> warnings;
  auto lock =
      ClusterLock::acquire(lab.connector, hosts_of(cfg), "fest", kMe, kTimeout, {}, warnings);
  REQUIRE(lock);
  const std::size_t mark = lab.connector.calls().size();
  std::string host;
  lab.connector.on_call = [&](const std::string& call) {
    if (!host.empty() || call.find(" define_domain ") == std::string::npos) return;
    host = call.substr(0, call.find(' '));
    std::lock_guard<std::mutex> contents(lab.connector.mu);
    lab.connector.contents[host + "/kumo-lock_fest"] = kOther.to_json();
  };
  const ExecResult r = lab.apply(lab.plan(cfg), guarded_by(*lock));
  REQUIRE_FALSE(host.empty());
  CHECK_THAT(r.stopped, Catch::StartsWith("the lock of cluster \"fest\" on host " + host +
                                          " was taken from this apply while it ran"));
  std::size_t reads = 0;
  for (const auto& c : calls_on(lab, host, mark))
    reads += c == host + " read_volume kumo-lock_fest";
  CHECK(reads > 0);
}

namespace {

// A session of hv1 whose reads of the lock volume are counted, the first held back until the
// test lets it go: the callers that come meanwhile all wait for it.
class HeldLockReads : public FakeSession {
 public:
  using FakeSession::FakeSession;
  std::optional<ObservedVolume> volume(const std::string& name) override {
    if (name == "kumo-lock_fest" && reads++ == 0) {
      while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return FakeSession::volume(name);
  }
  std::atomic<int> reads{0};
  std::atomic<bool> go{false};
};

}  // namespace

TEST_CASE("checks that start together on a host share one read of the lock", "[lock]") {
  // The steps that start at once on a host (kumo destroy's deletes) each need the lock checked
  // before they change anything. A check that began after a step asked is as fresh as the
  // step's own: the steps that ask while one runs share the next, and its outcome.
  Lab lab;
  const auto hosts = hosts_of(config(kCluster));
  std::vector<std::string> warnings;
  auto lock = ClusterLock::acquire(lab.connector, hosts, "fest", kMe, kTimeout, {}, warnings);
  REQUIRE(lock);
  const bool removed = GENERATE(false, true);
  if (removed) {
    std::lock_guard<std::recursive_mutex> state(lab.state_mu);
    std::erase_if(lab.host("hv1").volumes,
                  [](const ObservedVolume& v) { return v.name == "kumo-lock_fest"; });
  }
  HeldLockReads session(lab.connector, hosts[0]);
  constexpr int kCallers = 8;
  std::vector<std::string> outcome(kCallers, "not run");
  std::atomic<int> entered{0};
  auto check = [&](int i) {
    ++entered;
    try {
      lock->verify("hv1", session);
      outcome[i] = "";
    } catch (const LockLost& e) {
      outcome[i] = e.what();
    }
  };
  {
    std::vector<std::jthread> callers;
    callers.emplace_back(check, 0);
    while (session.reads == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (int i = 1; i < kCallers; ++i) callers.emplace_back(check, i);
    while (entered < kCallers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // each is waiting by now
    session.go = true;
  }
  // The first caller's read, then one for the seven that asked while it ran (not seven).
  CHECK(session.reads == 2);
  const std::string lost =
      "the lock of cluster \"fest\" on host hv1 was removed while this apply held it (kumo "
      "force-unlock?)";
  for (const auto& o : outcome) CHECK(o == (removed ? lost : ""));
  // A later check reads again: a shared outcome is never older than the caller's asking.
  const int before = session.reads;
  if (!removed) lock->verify("hv1", session);
  if (removed) CHECK_THROWS_AS(lock->verify("hv1", session), LockLost);
  CHECK(session.reads == before + 1);
}
