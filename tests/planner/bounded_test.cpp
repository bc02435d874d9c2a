// The one pool that talks to hosts: however many hosts, observing, locking and applying never
// have more than their bound in flight, and every host is still done.
#include "planner/bounded.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

#include "planner/lock.h"
#include "planner/observe.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;
using namespace std::chrono_literals;

namespace {

// How many calls are in flight now, and the most there ever were.
struct InFlight {
  std::atomic<int> now{0}, peak{0};
  void enter() {
    const int n = ++now;
    int p = peak;
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
  }
  void leave() { --now; }
};

// Each observe takes a moment, so that an unbounded caller would have them all in flight at once.
struct CountingProvider : Provider {
  explicit CountingProvider(Provider& p) : inner(p) {}
  ObservedHost observe(const HostTarget& host, std::chrono::milliseconds timeout) override {
    calls.enter();
    std::this_thread::sleep_for(2ms);
    ObservedHost h = inner.observe(host, timeout);
    calls.leave();
    return h;
  }
  Provider& inner;
  InFlight calls;
};

struct CountingConnector : HostConnector {
  explicit CountingConnector(HostConnector& c) : inner(c) {}
  std::unique_ptr<HostSession> connect(const HostTarget& host,
                                       std::chrono::milliseconds timeout) override {
    calls.enter();
    std::this_thread::sleep_for(20ms);
    try {
      auto s = inner.connect(host, timeout);
      calls.leave();
      return s;
    } catch (...) {
      calls.leave();
      throw;
    }
  }
  HostConnector& inner;
  InFlight calls;
};

std::vector<HostTarget> many_hosts(Lab& lab, int n) {
  std::vector<HostTarget> out;
  for (int i = 0; i < n; ++i) {
    const std::string name = "hv" + std::to_string(100 + i);
    lab.host(name);
    out.push_back({name, "test:///" + name, "default"});
  }
  return out;
}

}  // namespace

TEST_CASE("bounded_for runs every item once, never more than its limit at once", "[bounded]") {
  for (const int limit : {1, 7, 32}) {
    InFlight running;
    std::vector<std::atomic<int>> runs(200);
    bounded_for(runs.size(), limit, [&](std::size_t i) {
      running.enter();
      std::this_thread::sleep_for(1ms);
      ++runs[i];
      running.leave();
    });
    INFO("limit " << limit);
    CHECK(running.peak <= limit);
    CHECK(running.peak >= std::min(limit, 2));  // and it does run items side by side
    CHECK(std::all_of(runs.begin(), runs.end(), [](const auto& r) { return r == 1; }));
  }
}

TEST_CASE("bounded_for finishes every item when one throws, then rethrows it", "[bounded]") {
  std::atomic<int> done{0};
  CHECK_THROWS_WITH(bounded_for(50, 4,
                                [&](std::size_t i) {
                                  if (i == 3) throw std::runtime_error("item 3 failed");
                                  ++done;
                                }),
                    "item 3 failed");
  CHECK(done == 49);
  bounded_for(0, 4, [](std::size_t) { FAIL("no items: nothing runs"); });
}

TEST_CASE("observing 300 hosts has at most 32 in flight, and reads every one in order",
          "[bounded]") {
  Lab lab;
  const auto hosts = many_hosts(lab, 300);
  CountingProvider provider(lab);
  const auto observed = observe_hosts(provider, hosts, 100ms);
  CHECK(provider.calls.peak <= kHostParallelism);
  CHECK(provider.calls.peak > 1);
  REQUIRE(observed.size() == hosts.size());
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    CHECK(observed[i].host == hosts[i].name);
    CHECK(observed[i].reachable);
  }
  CountingProvider capped(lab);
  observe_hosts(capped, hosts, 100ms, {}, 3);
  CHECK(capped.calls.peak <= 3);
}

TEST_CASE("locking and reading the locks of 300 hosts connects to at most N at once", "[bounded]") {
  Lab lab;
  const auto hosts = many_hosts(lab, 300);
  CountingConnector connector(lab.connector);
  const LockHolder me{"alice", "laptop", "kumo apply", 100, "2026-11-26T10:00:00Z", "tok-a"};
  std::vector<std::string> warnings;
  auto lock = ClusterLock::acquire(connector, hosts, "fest", me, 100ms, {}, warnings, 5);
  CHECK(connector.calls.peak <= 5);
  CHECK(connector.calls.peak > 1);

  CountingConnector reader(lab.connector);
  const auto locks = read_locks(reader, hosts, "fest", 100ms, 5);
  CHECK(reader.calls.peak <= 5);
  REQUIRE(locks.size() == hosts.size());
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    CHECK(locks[i].host == hosts[i].name);
    REQUIRE(locks[i].holder);
    CHECK(locks[i].holder->token == "tok-a");  // every host was locked
  }
  CHECK(lock->release().empty());
}

TEST_CASE("apply connects to at most `connections` hosts at once", "[bounded][executor]") {
  Lab lab;
  const Plan p = lab.plan(config(kCluster));
  CountingConnector connector(lab.connector);
  ExecOptions opts;
  opts.parallelism = 10;
  opts.connections = 1;
  opts.poll = 1ms;
  const ExecResult r = execute(p, connector, lab.fetcher, opts);
  INFO(failures(r));
  CHECK(r.success());
  CHECK(connector.calls.peak == 1);
}
