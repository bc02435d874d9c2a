// The cluster lock on the fake hosts: a record kumo-lock_<cluster> per host (the fake keeps it as
// a volume, HostSession's default) that holds its holder as JSON. One holder at a time, taken in
// host-name order, stale holders taken over, unreachable hosts skipped, what was taken given back
// on failure, and only one's own lock released.
#include "planner/lock.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include <catch2/catch.hpp>

#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

namespace {

constexpr std::chrono::milliseconds kTimeout{100};
const std::string kVolume = "kumo-lock_fest";

const LockHolder kAlice{"alice", "laptop", "kumo apply", 100, "2026-11-26T10:00:00Z", "tok-a"};
const LockHolder kCi{"ci", "runner", "kumo apply", 200, "2026-11-26T10:00:05Z", "tok-b"};
const LockHolder kDead{"root", "here", "kumo apply", 4242, "2026-11-26T09:00:00Z", "tok-dead"};

const StaleCheck kNeverStale = [](const LockHolder&) { return false; };

std::vector<HostTarget> targets(const std::vector<std::string>& names) {
  std::vector<HostTarget> out;
  for (const auto& n : names) out.push_back({n, "test:///" + n, "default"});
  return out;
}

const std::vector<HostTarget> kHosts = targets({"hv1", "hv2", "hv3"});

std::unique_ptr<ClusterLock> take(Lab& lab, const LockHolder& who,
                                  std::vector<std::string>& warnings,
                                  const std::vector<HostTarget>& hosts = kHosts,
                                  const StaleCheck& stale = kNeverStale) {
  return ClusterLock::acquire(lab.connector, hosts, "fest", who, kTimeout, stale, warnings);
}

// Whether `host` has a lock volume of cluster fest.
bool locked(Lab& lab, const std::string& host, const std::string& volume = kVolume) {
  const auto& vs = lab.host(host).volumes;
  return std::any_of(vs.begin(), vs.end(),
                     [&](const ObservedVolume& v) { return v.name == volume; });
}

// Whose token the lock on `host` holds ("" when there is no lock).
std::string token_on(Lab& lab, const std::string& host) {
  if (!locked(lab, host)) return "";
  const auto h = LockHolder::from_json(lab.connector.contents[host + "/" + kVolume]);
  return h ? h->token : "(unreadable)";
}

// What a kumo that went away, or another one, left on `host`.
void plant(Lab& lab, const std::string& host, const std::string& content,
           const std::string& volume = kVolume) {
  lab.add_volume(host, volume, content.size());
  lab.connector.contents[host + "/" + volume] = content;
}

}  // namespace

TEST_CASE("the cluster lock: one holder at a time, named to the second", "[lock]") {
  Lab lab;
  const auto cfg = config(kCluster);
  std::vector<HostTarget> hosts;
  for (const auto& h : cfg.hosts) hosts.push_back({h.name, h.uri, h.pool});
  LockHolder a{"alice", "laptop", "kumo apply", 100, "2026-11-26T10:00:00Z", "tok-a"};
  LockHolder b{"ci", "runner", "kumo apply", 200, "2026-11-26T10:00:05Z", "tok-b"};
  std::vector<std::string> warnings;
  const auto never_stale = [](const LockHolder&) { return false; };
  auto first = ClusterLock::acquire(lab.connector, hosts, "fest", a, std::chrono::milliseconds(100),
                                    never_stale, warnings);
  REQUIRE(first);
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    CHECK(lab.connector.contents[std::string(h) + "/kumo-lock_fest"].find("alice") !=
          std::string::npos);
  }
  // The lock volume is not an object of the cluster: plan neither lists nor changes it.
  const Plan p = lab.plan(cfg);
  for (const auto& c : p.changes) CHECK(c.address.str().find("lock") == std::string::npos);
  try {
    ClusterLock::acquire(lab.connector, hosts, "fest", b, std::chrono::milliseconds(100),
                         never_stale, warnings);
    FAIL("the second holder got the lock");
  } catch (const LockHeld& e) {
    CHECK_THAT(e.what(), Catch::Contains("cluster \"fest\" is locked on host hv1 by "
                                         "alice@laptop (pid 100, kumo apply) since "
                                         "2026-11-26T10:00:00Z") &&
                             Catch::Contains("force-unlock"));
  }
  // Still alice's everywhere: the loser took nothing.
  for (const auto& l : read_locks(lab.connector, hosts, "fest", std::chrono::milliseconds(100))) {
    REQUIRE(l.holder);
    CHECK(l.holder->token == "tok-a");
  }
  // Another cluster is not affected.
  auto other = ClusterLock::acquire(lab.connector, hosts, "other", b,
                                    std::chrono::milliseconds(100), never_stale, warnings);
  CHECK(other);
  other.reset();
  first->release();
  for (const auto& l : read_locks(lab.connector, hosts, "fest", std::chrono::milliseconds(100)))
    CHECK_FALSE(l.holder);
  CHECK(warnings.empty());
}

TEST_CASE("a stale lock is taken over with a warning, force-unlock breaks any", "[lock]") {
  Lab lab;
  std::vector<HostTarget> hosts = {{"hv1", "test:///hv1", "default"},
                                   {"hv2", "test:///hv2", "default"}};
  LockHolder dead{"root", "here", "kumo apply", 4242, "2026-11-26T09:00:00Z", "tok-dead"};
  LockHolder me{"root", "here", "kumo apply", 4343, "2026-11-26T10:00:00Z", "tok-me"};
  std::vector<std::string> warnings;
  // What a kumo killed with -9 leaves: its lock on the hosts.
  for (const auto& h : hosts) {
    lab.add_volume(h.name, "kumo-lock_fest", 100);
    lab.connector.contents[h.name + "/kumo-lock_fest"] = dead.to_json();
  }
  auto lock = ClusterLock::acquire(
      lab.connector, hosts, "fest", me, std::chrono::milliseconds(100),
      [](const LockHolder& h) { return h.pid == 4242; }, warnings);
  REQUIRE(lock);
  REQUIRE(warnings.size() == 2);
  CHECK_THAT(warnings[0],
             Catch::Contains("took over a stale lock") && Catch::Contains("root@here (pid 4242"));
  CHECK(lab.connector.contents["hv1/kumo-lock_fest"].find("tok-me") != std::string::npos);
  // A holder elsewhere is never stale: force-unlock breaks the lock whoever holds it.
  for (const auto& h : hosts) break_lock(lab.connector, h, "fest", std::chrono::milliseconds(100));
  for (const auto& l : read_locks(lab.connector, hosts, "fest", std::chrono::milliseconds(100)))
    CHECK_FALSE(l.holder);
  // Nothing of its own left to release: each host says its lock was removed meanwhile.
  const auto released = lock->release();
  CHECK(released.size() == hosts.size());
  for (const auto& w : released)
    CHECK_THAT(w, Catch::Contains("was removed while this run held it"));
}

TEST_CASE("a released lock can be taken again, and a dropped one is released", "[lock]") {
  Lab lab;
  std::vector<std::string> warnings;
  auto mine = take(lab, kAlice, warnings);
  REQUIRE(mine);
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK(token_on(lab, h) == "tok-a");
  CHECK(mine->release().empty());
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK_FALSE(locked(lab, h));
  // Released once: releasing again touches nothing.
  const auto deletes = lab.connector.count("hv1 delete_volume");
  CHECK(mine->release().empty());
  CHECK(lab.connector.count("hv1 delete_volume") == deletes);

  auto theirs = take(lab, kCi, warnings);
  REQUIRE(theirs);
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK(token_on(lab, h) == "tok-b");
  theirs.reset();  // a kumo that ends without calling release() gives the lock back
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK_FALSE(locked(lab, h));
  CHECK(warnings.empty());
}

TEST_CASE("only a holder the check calls stale is taken over, a live one refuses the lock",
          "[lock]") {
  Lab lab;
  plant(lab, "hv1", kDead.to_json());
  plant(lab, "hv2", kCi.to_json());
  std::vector<std::string> warnings;
  const StaleCheck dead_pid = [](const LockHolder& h) { return h.pid == 4242; };
  try {
    take(lab, kAlice, warnings, kHosts, dead_pid);
    FAIL("took a lock held by a live holder");
  } catch (const LockHeld& e) {
    CHECK(std::string(e.what()) ==
          "cluster \"fest\" is locked on host hv2 by ci@runner (pid 200, kumo apply) since "
          "2026-11-26T10:00:05Z; nothing was changed. Wait for it to finish; if that process is "
          "gone (another machine crashed), run: kumo force-unlock");
  }
  CHECK(warnings == std::vector<std::string>{
                        "host hv1: took over a stale lock of cluster \"fest\" held by root@here "
                        "(pid 4242, kumo apply) since 2026-11-26T09:00:00Z (that process is "
                        "gone)"});
  // hv1 was taken over, then given back; the live holder keeps hv2; hv3, tried beside hv2, was
  // given back too.
  CHECK_FALSE(locked(lab, "hv1"));
  CHECK(token_on(lab, "hv2") == "tok-b");
  CHECK_FALSE(locked(lab, "hv3"));
}

TEST_CASE("without a stale check no holder is ever taken over", "[lock]") {
  Lab lab;
  plant(lab, "hv1", kDead.to_json());
  std::vector<std::string> warnings;
  CHECK_THROWS_WITH(take(lab, kAlice, warnings, kHosts, StaleCheck{}),
                    Catch::StartsWith("cluster \"fest\" is locked on host hv1 by root@here (pid "
                                      "4242, kumo apply)"));
  CHECK(token_on(lab, "hv1") == "tok-dead");
  CHECK(warnings.empty());
}

TEST_CASE("an unreachable host is left out of the lock", "[lock]") {
  Lab lab;
  lab.unreachable.insert("hv2");
  std::vector<std::string> warnings;
  auto lock = take(lab, kAlice, warnings);
  REQUIRE(lock);
  CHECK(token_on(lab, "hv1") == "tok-a");
  CHECK_FALSE(locked(lab, "hv2"));
  CHECK(token_on(lab, "hv3") == "tok-a");
  CHECK(lab.connector.count("hv2 create_volume_exclusive") == 0);
  CHECK(warnings.empty());
  CHECK(lock->release().empty());
  CHECK_FALSE(locked(lab, "hv1"));
  CHECK_FALSE(locked(lab, "hv3"));
}

TEST_CASE("a host failing midway: its error comes out and what was taken is given back", "[lock]") {
  Lab lab;
  lab.connector.fail.insert("hv2 create_volume_exclusive");
  std::vector<std::string> warnings;
  CHECK_THROWS_MATCHES(
      take(lab, kAlice, warnings), HostError,
      Catch::Message("host hv2: create_volume_exclusive kumo-lock_fest: injected failure"));
  CHECK_FALSE(locked(lab, "hv1"));
  CHECK(lab.connector.count("hv1 delete_volume kumo-lock_fest") == 1);
  CHECK_FALSE(locked(lab, "hv2"));
  CHECK_FALSE(locked(lab, "hv3"));  // tried beside hv2, and given back
}

TEST_CASE("release removes only this holder's lock and reports what it could not release",
          "[lock]") {
  Lab lab;
  std::vector<std::string> warnings;
  auto lock = take(lab, kAlice, warnings);
  REQUIRE(lock);
  SECTION("a lock someone else holds now is left to them") {
    // Broken with force-unlock meanwhile and taken by another kumo.
    lab.connector.contents["hv2/" + kVolume] = kCi.to_json();
    CHECK(lock->release() ==
          std::vector<std::string>{"host hv2: the lock of cluster \"fest\" is held by " +
                                   kCi.describe() + " since this run took it; left to its holder"});
    CHECK_FALSE(locked(lab, "hv1"));
    CHECK(token_on(lab, "hv2") == "tok-b");
    CHECK_FALSE(locked(lab, "hv3"));
    CHECK(lab.connector.count("hv2 delete_volume") == 0);
  }
  SECTION("a lock broken meanwhile is said, and the others are released") {
    break_lock(lab.connector, kHosts[1], "fest", kTimeout);
    CHECK(lock->release() ==
          std::vector<std::string>{"host hv2: the lock of cluster \"fest\" was removed while this "
                                   "run held it (kumo force-unlock?)"});
    for (const char* h : {"hv1", "hv2", "hv3"}) CHECK_FALSE(locked(lab, h));
  }
  SECTION("a host that fails keeps its lock, with what to do about it") {
    lab.connector.fail.insert("hv2 delete_volume");
    CHECK(lock->release() ==
          std::vector<std::string>{
              "host hv2: the lock of cluster \"fest\" could not be released (host hv2: "
              "delete_volume kumo-lock_fest: injected failure); once the host is back, run: kumo "
              "force-unlock"});
    CHECK_FALSE(locked(lab, "hv1"));
    CHECK(token_on(lab, "hv2") == "tok-a");
    CHECK_FALSE(locked(lab, "hv3"));
  }
}

TEST_CASE(
    "read_locks reports each host's holder, no lock, an unreadable one, or why it could "
    "not ask",
    "[lock]") {
  Lab lab;
  lab.host("hv4");
  plant(lab, "hv1", kAlice.to_json());
  plant(lab, "hv2", "{\"user\": \"half-writ");
  lab.unreachable.insert("hv3");
  plant(lab, "hv4", kCi.to_json(), "kumo-lock_other");  // another cluster's
  const auto locks =
      read_locks(lab.connector, targets({"hv1", "hv2", "hv3", "hv4"}), "fest", kTimeout);
  REQUIRE(locks.size() == 4);
  CHECK(locks[0].host == "hv1");
  REQUIRE(locks[0].holder);
  CHECK(locks[0].holder->describe() ==
        "alice@laptop (pid 100, kumo apply) since 2026-11-26T10:00:00Z");
  CHECK_FALSE(locks[0].unreadable);
  CHECK(locks[0].error.empty());

  CHECK(locks[1].host == "hv2");
  CHECK_FALSE(locks[1].holder);
  CHECK(locks[1].unreadable);
  CHECK(locks[1].error.empty());

  CHECK(locks[2].host == "hv3");
  CHECK_FALSE(locks[2].holder);
  CHECK_FALSE(locks[2].unreadable);
  CHECK(locks[2].error == "host hv3 (test:///hv3): connection refused");

  CHECK(locks[3].host == "hv4");
  CHECK_FALSE(locks[3].holder);
  CHECK_FALSE(locks[3].unreadable);
  CHECK(locks[3].error.empty());
}

TEST_CASE("release gives every host back at once and says its problems in host order", "[lock]") {
  Lab lab;
  std::vector<std::string> warnings;
  lab.host("hv4");
  const auto hosts = targets({"hv1", "hv2", "hv3", "hv4"});
  auto lock = take(lab, kAlice, warnings, hosts);
  REQUIRE(lock);
  lab.connector.fail.insert("hv4 delete_volume");
  lab.connector.fail.insert("hv1 delete_volume");
  lab.connector.delay = std::chrono::milliseconds(20);
  {
    std::lock_guard<std::mutex> l(lab.connector.mu);
    lab.connector.max_in_flight_total = 0;
  }
  const auto problems = lock->release();
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].rfind("host hv1: ", 0) == 0);
  CHECK(problems[1].rfind("host hv4: ", 0) == 0);
  CHECK(lab.connector.max_in_flight_total >= 2);  // not one host after another
  CHECK(token_on(lab, "hv1") == "tok-a");
  CHECK_FALSE(locked(lab, "hv2"));
  CHECK_FALSE(locked(lab, "hv3"));
  CHECK(token_on(lab, "hv4") == "tok-a");
}

TEST_CASE("break_lock removes the cluster's lock whoever holds it, and nothing else", "[lock]") {
  Lab lab;
  plant(lab, "hv1", "garbage");
  plant(lab, "hv1", kCi.to_json(), "kumo-lock_other");
  plant(lab, "hv2", kCi.to_json());
  for (const auto& h : kHosts) break_lock(lab.connector, h, "fest", kTimeout);
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK_FALSE(locked(lab, h));
  CHECK(locked(lab, "hv1", "kumo-lock_other"));
  lab.unreachable.insert("hv2");
  CHECK_THROWS_AS(break_lock(lab.connector, kHosts[1], "fest", kTimeout), HostError);
  // Broken, the lock can be taken.
  std::vector<std::string> warnings;
  lab.unreachable.clear();
  CHECK(take(lab, kAlice, warnings));
}

TEST_CASE("a lock holder as JSON: round trip, description, and garbage is no holder", "[lock]") {
  const auto back = LockHolder::from_json(kAlice.to_json());
  REQUIRE(back);
  CHECK(back->user == "alice");
  CHECK(back->machine == "laptop");
  CHECK(back->command == "kumo apply");
  CHECK(back->pid == 100);
  CHECK(back->since == "2026-11-26T10:00:00Z");
  CHECK(back->token == "tok-a");
  CHECK(back->to_json() == kAlice.to_json());
  CHECK(kAlice.describe() == "alice@laptop (pid 100, kumo apply) since 2026-11-26T10:00:00Z");
  LockHolder quiet = kAlice;
  quiet.command.clear();
  CHECK(quiet.describe() == "alice@laptop (pid 100) since 2026-11-26T10:00:00Z");

  for (const char* garbage : {"", "garbage", "{\"user\": \"half-writ", "[1, 2]", "\"tok-a\"",
                              "{\"user\": \"alice\", \"pid\": 100}"}) {
    INFO(garbage);
    CHECK_FALSE(LockHolder::from_json(garbage));
  }
  // A token is all a holder needs; what else is missing reads as unknown.
  const auto bare = LockHolder::from_json("{\"token\": \"t\"}");
  REQUIRE(bare);
  CHECK(bare->describe() == "?@? (pid 0) since ?");
  CHECK(bare->token == "t");
}

TEST_CASE("the first host in name order is locked first, alone: contenders never deadlock",
          "[lock]") {
  Lab lab;
  const auto shuffled = targets({"hv3", "hv1", "hv2"});
  SECTION("the first host by name, then the others") {
    std::vector<std::string> warnings;
    auto lock = take(lab, kAlice, warnings, shuffled);
    REQUIRE(lock);
    const long hv1 = lab.connector.index_of("hv1 create_volume_exclusive");
    const long hv2 = lab.connector.index_of("hv2 create_volume_exclusive");
    const long hv3 = lab.connector.index_of("hv3 create_volume_exclusive");
    REQUIRE(hv1 >= 0);
    CHECK(hv1 < hv2);
    CHECK(hv1 < hv3);
  }
  SECTION("a contender refused at the first host tries no other") {
    plant(lab, "hv1", kCi.to_json());
    std::vector<std::string> warnings;
    CHECK_THROWS_WITH(take(lab, kAlice, warnings, shuffled),
                      Catch::StartsWith("cluster \"fest\" is locked on host hv1 by ci@runner"));
    CHECK(lab.connector.count("hv2 create_volume_exclusive") == 0);
    CHECK(lab.connector.count("hv3 create_volume_exclusive") == 0);
  }
  SECTION("of the others held, the first in name order is the one named") {
    plant(lab, "hv2", kCi.to_json());
    plant(lab, "hv3", kCi.to_json());
    std::vector<std::string> warnings;
    CHECK_THROWS_WITH(take(lab, kAlice, warnings, shuffled),
                      Catch::StartsWith("cluster \"fest\" is locked on host hv2 by ci@runner"));
    CHECK_FALSE(locked(lab, "hv1"));  // taken first, given back
    CHECK(token_on(lab, "hv3") == "tok-b");
  }
}

TEST_CASE("a lock whose content never reads as a holder is refused as unreadable", "[lock]") {
  Lab lab;
  plant(lab, "hv1", "not a holder");
  std::vector<std::string> warnings;
  // Looked at again (it may be being written) before giving up.
  CHECK_THROWS_MATCHES(
      take(lab, kAlice, warnings), LockHeld,
      Catch::Message("cluster \"fest\" is locked on host hv1 by an unreadable lock (lock record "
                     "kumo-lock_fest); nothing was changed. If no kumo is "
                     "running for this cluster: kumo force-unlock"));
  CHECK(lab.connector.count("hv1 read_volume kumo-lock_fest") == 20);
  CHECK(lab.connector.contents["hv1/" + kVolume] == "not a holder");
  CHECK(lab.connector.count("hv2 create_volume_exclusive") == 0);
}

TEST_CASE("a lock whose fields have the wrong types is unreadable, not an exception", "[lock]") {
  for (const char* text : {R"({"token": "t", "pid": "12"})", R"({"token": 7})"}) {
    INFO(text);
    CHECK_FALSE(LockHolder::from_json(text));
  }
  Lab lab;
  plant(lab, "hv1", R"({"token": "t", "pid": "12"})");
  const auto locks = read_locks(lab.connector, targets({"hv1"}), "fest", kTimeout);
  REQUIRE(locks.size() == 1);
  CHECK(locks[0].unreadable);
}

namespace {

const StaleCheck kDeadIsStale = [](const LockHolder& h) { return h.token == kDead.token; };

// Volumes of `host` whose name holds `part`.
std::vector<std::string> volumes_with(Lab& lab, const std::string& host, const std::string& part) {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  std::vector<std::string> out;
  for (const auto& v : lab.host(host).volumes)
    if (v.name.find(part) != std::string::npos) out.push_back(v.name);
  return out;
}

}  // namespace

TEST_CASE("two kumos taking over one stale lock at once: exactly one wins", "[lock]") {
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    Lab lab;
    for (const auto& h : kHosts) plant(lab, h.name, kDead.to_json());
    // No one deletes hv1's stale lock before both have read it there.
    // (Reads after the stale lock's delete are the winner's own, of its new lock: not counted.)
    std::mutex mu;
    std::set<std::thread::id> readers;
    bool deleted = false;
    lab.connector.on_call = [&](const std::string& call) {
      if (call == "hv1 read_volume " + kVolume) {
        std::lock_guard<std::mutex> lock(mu);
        if (!deleted) readers.insert(std::this_thread::get_id());
      }
      if (call != "hv1 delete_volume " + kVolume) return;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (std::chrono::steady_clock::now() < until) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (readers.size() >= 2) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::lock_guard<std::mutex> lock(mu);
      deleted = true;
    };
    struct Taker {
      const LockHolder& who;
      std::unique_ptr<ClusterLock> lock;
      std::string refused;
      std::vector<std::string> warnings;
    };
    Taker takers[2] = {{kAlice, nullptr, "", {}}, {kCi, nullptr, "", {}}};
    std::vector<std::thread> threads;
    for (auto& t : takers) {
      threads.emplace_back([&lab, &t] {
        try {
          t.lock = take(lab, t.who, t.warnings, kHosts, kDeadIsStale);
        } catch (const LockHeld& e) {
          t.refused = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    REQUIRE(readers.size() == 2);
    REQUIRE((takers[0].lock != nullptr) != (takers[1].lock != nullptr));
    const Taker& winner = takers[0].lock ? takers[0] : takers[1];
    const Taker& loser = takers[0].lock ? takers[1] : takers[0];
    CHECK_THAT(loser.refused, Catch::StartsWith("cluster \"fest\" is locked on host hv1 by " +
                                                winner.who.describe() + "; nothing was changed"));
    for (const char* h : {"hv1", "hv2", "hv3"}) {
      CHECK(token_on(lab, h) == winner.who.token);
      CHECK(volumes_with(lab, h, ".takeover-").empty());
    }
    // Every host but one the winner created itself after the loser's back-off took over.
    CHECK(winner.warnings.size() >= 2);
    for (const auto& w : winner.warnings) CHECK_THAT(w, Catch::Contains("took over a stale lock"));
    CHECK(loser.warnings.empty());
  }
}

TEST_CASE("a takeover whose taker died midway is waited for, then refused naming it", "[lock]") {
  Lab lab;
  plant(lab, "hv1", kDead.to_json());
  const std::string takeover = takeover_volume_name("fest", kDead);
  plant(lab, "hv1", kCi.to_json(), takeover);
  std::vector<std::string> warnings;
  CHECK_THROWS_MATCHES(take(lab, kAlice, warnings, kHosts, kDeadIsStale), LockHeld,
                       Catch::Message("cluster \"fest\" is locked on host hv1 by " +
                                      kDead.describe() + ", a stale lock whose takeover by " +
                                      kCi.describe() + " did not finish (lock record " + takeover +
                                      "); nothing was changed. If that kumo is gone: kumo "
                                      "force-unlock"));
  CHECK(token_on(lab, "hv1") == "tok-dead");
  CHECK(lab.connector.count("hv1 delete_volume") == 0);
  // force-unlock sees it, and removes the lock and the takeover volume.
  const auto locks = read_locks(lab.connector, targets({"hv1"}), "fest", kTimeout);
  REQUIRE(locks[0].taker);
  CHECK(locks[0].taker->token == "tok-b");
  break_lock(lab.connector, kHosts[0], "fest", kTimeout);
  CHECK(volumes_with(lab, "hv1", "kumo-lock_fest").empty());
  CHECK(take(lab, kAlice, warnings, kHosts, kDeadIsStale));
}

TEST_CASE("a takeover volume is named after the stale holder's token", "[lock]") {
  LockHolder h = kDead;
  h.token = "0123456789abcdef0123456789abcdef";
  CHECK(takeover_volume_name("fest", h) == "kumo-lock_fest.takeover-0123456789abcdef");
  // A token kumo did not write is hashed: still one name per holder, still a valid name.
  const std::string odd = takeover_volume_name("fest", kDead);
  CHECK(odd.rfind("kumo-lock_fest.takeover-", 0) == 0);
  CHECK(odd.size() == std::string("kumo-lock_fest.takeover-").size() + 16);
  CHECK(odd == takeover_volume_name("fest", kDead));
  CHECK(odd != takeover_volume_name("fest", kCi));
}

TEST_CASE("waiting for a held lock: taken once its holder lets go, refused naming it if never",
          "[lock]") {
  Lab lab;
  std::vector<std::string> warnings;
  auto alice = take(lab, kAlice, warnings);
  REQUIRE(alice);
  int asked = 0;
  // The holder lets go while the second waits (on its second refusal).
  auto ci = acquire_waiting(lab.connector, kHosts, "fest", kCi, kTimeout, kNeverStale, warnings,
                            [&](const LockHeld& held) {
                              CHECK_THAT(held.what(), Catch::Contains("alice@laptop"));
                              if (++asked == 2) alice->release();
                              return true;
                            });
  REQUIRE(ci);
  CHECK(asked == 2);
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK(token_on(lab, h) == "tok-b");
  // Never let go: after as many tries as the wait allows, the refusal names the holder.
  asked = 0;
  try {
    acquire_waiting(lab.connector, kHosts, "fest", kAlice, kTimeout, kNeverStale, warnings,
                    [&](const LockHeld&) { return ++asked < 3; });
    FAIL("the lock was taken from a live holder");
  } catch (const LockHeld& e) {
    CHECK(asked == 3);
    CHECK_THAT(e.what(), Catch::Contains("cluster \"fest\" is locked on host hv1 by ci@runner "
                                         "(pid 200, kumo apply)"));
  }
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK(token_on(lab, h) == "tok-b");  // untouched
  // No wait: refused at once, as acquire.
  CHECK_THROWS_AS(
      acquire_waiting(lab.connector, kHosts, "fest", kAlice, kTimeout, kNeverStale, warnings, {}),
      LockHeld);
}

TEST_CASE("each host is ready to read as soon as it is locked or left out, not when all are",
          "[lock]") {
  Lab lab;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> ready, not_locked_when_ready, locked_before_hv1_ready;
  auto is_ready = [&](const std::string& h) {
    return std::find(ready.begin(), ready.end(), h) != ready.end();
  };
  const HostReady on_ready = [&](const std::string& host) {
    // Locked already when said ready (or left out: hv4 is unreachable, hv5 has no pool), and
    // the lock's connection lent for the reads of the host.
    const bool tried = lab.connector.count(host + " create_volume_exclusive") > 0 &&
                       lab.connector.count(host + " lend_connection") == 1;
    {
      std::lock_guard l(mu);
      if (host != "hv4" && !tried) not_locked_when_ready.push_back(host);
      ready.push_back(host);
    }
    cv.notify_all();
  };
  lab.host("hv4");
  lab.unreachable.insert("hv4");
  lab.host("hv5");
  auto hosts = targets({"hv1", "hv2", "hv3", "hv4", "hv5"});
  hosts[4].pool = "kumo";  // not there
  std::vector<std::string> warnings;

  SECTION("a slow host holds up no other") {
    bool hv3_waited_for_hv2 = false;
    lab.connector.on_connect = [&](const std::string& host) {
      if (host != "hv3") return;
      std::unique_lock l(mu);
      hv3_waited_for_hv2 = cv.wait_for(l, std::chrono::seconds(5), [&] { return is_ready("hv2"); });
    };
    auto lock = ClusterLock::acquire(lab.connector, hosts, "fest", kAlice, kTimeout, kNeverStale,
                                     warnings, 5, on_ready);
    REQUIRE(lock);
    CHECK(hv3_waited_for_hv2);  // hv2 was locked (and ready) while hv3 was still connecting
    std::sort(ready.begin(), ready.end());
    CHECK(ready == std::vector<std::string>{"hv1", "hv2", "hv3", "hv4", "hv5"});
    CHECK(lock->missing_pools().size() == 1);
    CHECK(not_locked_when_ready.empty());
  }
  SECTION("a slow host holds up none of the hosts after it by name once the gate is known") {
    // As an ssh host hv10 sorts before hv2..hv9: once hv1 is the gate, they need not wait for it.
    bool hv2_waited_for_hv3 = false;
    lab.connector.on_connect = [&](const std::string& host) {
      if (host != "hv2") return;
      std::unique_lock l(mu);
      hv2_waited_for_hv3 = cv.wait_for(l, std::chrono::seconds(5), [&] { return is_ready("hv3"); });
    };
    auto lock = ClusterLock::acquire(lab.connector, hosts, "fest", kAlice, kTimeout, kNeverStale,
                                     warnings, 5, on_ready);
    REQUIRE(lock);
    CHECK(hv2_waited_for_hv3);
    CHECK(not_locked_when_ready.empty());
  }
  SECTION("the first host by name is ready before any other is locked") {
    lab.connector.on_call = [&](const std::string& call) {
      if (call.rfind("hv1", 0) == 0 || call.find("create_volume_exclusive") == std::string::npos)
        return;
      std::lock_guard l(mu);
      if (!is_ready("hv1")) locked_before_hv1_ready.push_back(call);
    };
    auto lock = ClusterLock::acquire(lab.connector, hosts, "fest", kAlice, kTimeout, kNeverStale,
                                     warnings, 5, on_ready);
    REQUIRE(lock);
    CHECK(locked_before_hv1_ready.empty());
    CHECK(not_locked_when_ready.empty());
  }
  SECTION("refused at the first host, only the unreachable one was said ready") {
    plant(lab, "hv1", kCi.to_json());
    CHECK_THROWS_AS(ClusterLock::acquire(lab.connector, hosts, "fest", kAlice, kTimeout,
                                         kNeverStale, warnings, 5, on_ready),
                    LockHeld);
    CHECK(ready == std::vector<std::string>{"hv4"});
    CHECK_FALSE(locked(lab, "hv2"));
  }
  SECTION("an unreachable first host: the next one by name is the gate") {
    lab.unreachable.insert("hv1");
    plant(lab, "hv2", kCi.to_json());
    CHECK_THROWS_WITH(ClusterLock::acquire(lab.connector, hosts, "fest", kAlice, kTimeout,
                                           kNeverStale, warnings, 5, on_ready),
                      Catch::StartsWith("cluster \"fest\" is locked on host hv2 by ci@runner"));
    CHECK(lab.connector.count("hv3 create_volume_exclusive") == 0);
    std::sort(ready.begin(), ready.end());
    CHECK(ready == std::vector<std::string>{"hv1", "hv4"});
  }
}

TEST_CASE("a lock taken with fewer connections at once than hosts reaches every host", "[lock]") {
  // Whatever order hosts are connected in, the gate (the first host by name) must get a worker
  // before the others wait for it: with 1 or 2 workers for 5 hosts, some over ssh (which an
  // order by transport would put first), every host is locked.
  Lab lab;
  auto hosts = targets({"hv1", "hv2", "hv3", "hv4", "hv5"});
  hosts[3].uri = "qemu+ssh://root@hv4/system";
  hosts[4].uri = "qemu+ssh://root@hv5/system";
  const int workers = GENERATE(1, 2);
  std::vector<std::string> warnings;
  auto lock = ClusterLock::acquire(lab.connector, hosts, "fest", kAlice, kTimeout, kNeverStale,
                                   warnings, workers);
  REQUIRE(lock);
  for (const auto& h : hosts) CHECK(locked(lab, h.name));
}
