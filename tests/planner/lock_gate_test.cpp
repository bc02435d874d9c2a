// Reading hosts while the lock is taken: a host's read waits for its lock (LockGate), a closed
// gate skips what was not read yet, and reads that cannot be trusted say so.
#include "planner/lock_gate.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/exec_fixture.h"

using namespace kumo;

namespace {

// Counts reads; every host reads as reachable.
class CountingProvider final : public Provider {
 public:
  ObservedHost observe(const HostTarget& host, std::chrono::milliseconds) override {
    ++reads;
    ObservedHost h;
    h.host = host.name;
    h.reachable = true;
    return h;
  }
  std::atomic<int> reads{0};
};

const HostTarget kHv1{"hv1", "qemu:///hv1", "default"};
const HostTarget kHv2{"hv2", "qemu:///hv2", "default"};
constexpr std::chrono::milliseconds kTimeout{100};

}  // namespace

TEST_CASE("a host is read only once the gate opens it", "[lock]") {
  CountingProvider inner;
  LockGate gate;
  GatedProvider gated(inner, gate);
  auto read = std::async(std::launch::async, [&] { return gated.observe(kHv1, kTimeout); });
  CHECK(read.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  CHECK(inner.reads == 0);
  gate.open("hv2");  // another host's lock says nothing of hv1
  CHECK(read.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  gate.open("hv1");
  CHECK(read.get().reachable);
  CHECK(inner.reads == 1);
  CHECK(gated.observe(kHv2, kTimeout).reachable);  // opened before: no wait
  gate.done(true);
  CHECK(gate.reads_usable());
}

TEST_CASE("a refused try closes the gate: reads not begun are skipped, none can be used",
          "[lock]") {
  CountingProvider inner;
  LockGate gate;
  GatedProvider gated(inner, gate);
  gate.open("hv1");
  CHECK(gated.observe(kHv1, kTimeout).reachable);  // read under that try's lock
  auto waiting = std::async(std::launch::async, [&] { return gated.observe(kHv2, kTimeout); });
  gate.close();
  const ObservedHost skipped = waiting.get();
  CHECK_FALSE(skipped.reachable);
  CHECK(skipped.host == "hv2");
  CHECK(skipped.error == "host hv2: not read (the cluster lock was not taken there)");
  CHECK(inner.reads == 1);
  gate.open("hv2");  // a later try: too late, the run reads everything again once locked
  CHECK_FALSE(gated.observe(kHv2, kTimeout).reachable);
  gate.done(true);
  CHECK_FALSE(gate.reads_usable());
}

TEST_CASE("the lock given up or held without a host: nothing waits, and the reads are not used",
          "[lock]") {
  CountingProvider inner;
  SECTION("given up") {
    LockGate gate;
    GatedProvider gated(inner, gate);
    auto waiting = std::async(std::launch::async, [&] { return gated.observe(kHv1, kTimeout); });
    gate.done(false);
    CHECK_FALSE(waiting.get().reachable);
    CHECK_FALSE(gate.reads_usable());
  }
  SECTION("held, but a host was never opened") {
    LockGate gate;
    GatedProvider gated(inner, gate);
    gate.open("hv1");
    gate.done(true);
    CHECK(gated.observe(kHv1, kTimeout).reachable);
    CHECK(gate.reads_usable());
    CHECK_FALSE(gated.observe(kHv2, kTimeout).reachable);
    CHECK_FALSE(gate.reads_usable());
  }
  CHECK(inner.reads <= 1);
}

namespace {

// The lab's hosts, read through the real lock: each read records whether the host was locked then.
struct LockedReads final : Provider {
  explicit LockedReads(kumo::test::Lab& l) : lab(l) {}
  ObservedHost observe(const HostTarget& host, std::chrono::milliseconds timeout) override {
    const bool locked =
        lab.connector.count(host.name + " create_volume_exclusive kumo-lock_fest") > 0;
    std::lock_guard l(mu);
    (locked ? read_locked : read_unlocked).push_back(host.name);
    return lab.observe(host, timeout);
  }
  kumo::test::Lab& lab;
  std::mutex mu;
  std::vector<std::string> read_locked, read_unlocked;
};

const LockHolder kMe{"alice", "laptop", "kumo apply", 100, "2026-11-26T10:00:00Z", "tok-a"};
const LockHolder kOther{"ci", "runner", "kumo apply", 200, "2026-11-26T10:00:05Z", "tok-b"};

std::vector<HostTarget> lab_hosts() {
  return {{"hv1", "test:///hv1", "default"},
          {"hv2", "test:///hv2", "default"},
          {"hv3", "test:///hv3", "default"}};
}

bool has_volume(const std::vector<ObservedHost>& hosts, const std::string& host,
                const std::string& volume) {
  for (const auto& h : hosts) {
    if (h.host != host) continue;
    for (const auto& v : h.volumes)
      if (v.name == volume) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("the lock and the reads at once: every host read under this run's lock", "[lock]") {
  kumo::test::Lab lab;
  LockedReads reads(lab);
  std::vector<std::string> warnings;
  int reads_run = 0, locked_runs = 0;
  std::vector<ObservedHost> seen;
  auto lock = acquire_while_reading(
      lab.connector, lab_hosts(), "fest", kMe, kTimeout, {}, warnings, {}, 4, reads,
      [&](Provider& p) {
        ++reads_run;
        seen.clear();
        for (const auto& h : lab_hosts()) seen.push_back(p.observe(h, kTimeout));
      },
      [&] { ++locked_runs; });
  REQUIRE(lock);
  CHECK(reads_run == 1);
  CHECK(locked_runs == 1);
  CHECK(reads.read_unlocked.empty());
  CHECK(reads.read_locked.size() == 3);
  for (const auto& h : seen) CHECK(h.reachable);
  CHECK(lock->release().empty());
}

TEST_CASE("a refused try at the lock: the hosts are read again once it is held", "[lock]") {
  kumo::test::Lab lab;
  // Another kumo holds the lock on hv1, then lets go, having changed hv2 meanwhile.
  lab.add_volume("hv1", "kumo-lock_fest", 100);
  lab.connector.contents["hv1/kumo-lock_fest"] = kOther.to_json();
  LockedReads reads(lab);
  std::vector<std::string> warnings;
  int waits = 0, reads_run = 0;
  std::vector<ObservedHost> seen;
  const LockWait wait = [&](const LockHeld&) {
    ++waits;
    std::lock_guard g(lab.state_mu);
    auto& vs = lab.host("hv1").volumes;
    vs.erase(std::remove_if(vs.begin(), vs.end(),
                            [](const ObservedVolume& v) { return v.name == "kumo-lock_fest"; }),
             vs.end());
    lab.add_volume("hv2", "made-while-waiting", 100);
    return true;
  };
  auto read = [&](Provider& p) {
    ++reads_run;
    seen.clear();
    for (const auto& h : lab_hosts()) seen.push_back(p.observe(h, kTimeout));
  };
  SECTION("held after waiting") {
    auto lock = acquire_while_reading(lab.connector, lab_hosts(), "fest", kMe, kTimeout, {},
                                      warnings, wait, 4, reads, read);
    REQUIRE(lock);
    CHECK(waits == 1);
    CHECK(reads_run == 2);  // the first read (skipped while refused) is not what is used
    CHECK(reads.read_unlocked.empty());
    REQUIRE(seen.size() == 3);
    for (const auto& h : seen) CHECK(h.reachable);
    CHECK(has_volume(seen, "hv2", "made-while-waiting"));
  }
  SECTION("refused for good: nothing read at all") {
    CHECK_THROWS_AS(acquire_while_reading(lab.connector, lab_hosts(), "fest", kMe, kTimeout, {},
                                          warnings, {}, 4, reads, read),
                    LockHeld);
    CHECK(reads_run == 1);
    CHECK(reads.read_locked.empty());
    CHECK(reads.read_unlocked.empty());
    for (const auto& h : seen) CHECK_FALSE(h.reachable);
  }
}
