// kumo apply --lock-timeout: the waiting the CLI does for a held cluster lock (cli/engine.h), on
// the fake hosts: it waits, says for whom, takes the lock once it is let go, and gives up after
// the time given, naming the holder.
#include <catch2/catch.hpp>

#include <sstream>

#include "cli/engine.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

namespace {

const LockHolder kAlice{"alice", "laptop", "kumo apply", 100, "2026-11-26T10:00:00Z", "tok-a"};
const LockHolder kCi{"ci", "runner", "kumo apply", 200, "2026-11-26T10:00:05Z", "tok-b"};
const StaleCheck kNeverStale = [](const LockHolder&) { return false; };
constexpr std::chrono::milliseconds kTimeout{100};

std::vector<HostTarget> hosts() {
  return {{"hv1", "test:///hv1", "default"}, {"hv2", "test:///hv2", "default"}};
}

}  // namespace

TEST_CASE("kumo apply --lock-timeout waits for the lock and takes it once its holder lets go",
          "[lock][cli]") {
  Lab lab;
  std::vector<std::string> warnings;
  auto alice =
      ClusterLock::acquire(lab.connector, hosts(), "fest", kAlice, kTimeout, kNeverStale, warnings);
  REQUIRE(alice);
  std::ostringstream err;
  const LockWait cli_wait = cli::lock_waiter(std::chrono::seconds(20), "apply", err);
  int waits = 0;
  const auto start = std::chrono::steady_clock::now();
  auto ci = acquire_waiting(lab.connector, hosts(), "fest", kCi, kTimeout, kNeverStale, warnings,
                            [&](const LockHeld& held) {
                              const bool again = cli_wait(held);
                              if (++waits == 2) alice->release();  // after about a second
                              return again;
                            });
  REQUIRE(ci);
  CHECK(waits == 2);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= std::chrono::milliseconds(1500));  // two waits of a second each
  CHECK(waited < std::chrono::seconds(10));
  // Said once, naming the holder.
  CHECK(
      err.str().rfind("kumo apply: waiting up to 20 s for the lock: cluster \"fest\" is locked on "
                      "host hv1 by alice@laptop (pid 100, kumo apply) since 2026-11-26T10:00:00Z",
                      0) == 0);
  CHECK(err.str().find("\n") == err.str().size() - 1);
}

TEST_CASE("kumo apply --lock-timeout gives up after the time given, naming the holder",
          "[lock][cli]") {
  Lab lab;
  std::vector<std::string> warnings;
  auto alice =
      ClusterLock::acquire(lab.connector, hosts(), "fest", kAlice, kTimeout, kNeverStale, warnings);
  REQUIRE(alice);
  std::ostringstream err;
  const auto start = std::chrono::steady_clock::now();
  try {
    acquire_waiting(lab.connector, hosts(), "fest", kCi, kTimeout, kNeverStale, warnings,
                    cli::lock_waiter(std::chrono::milliseconds(1500), "destroy", err));
    FAIL("the lock was taken from its live holder");
  } catch (const LockHeld& e) {
    CHECK_THAT(e.what(), Catch::Contains("is locked on host hv1 by alice@laptop (pid 100"));
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= std::chrono::milliseconds(1500));
  CHECK(waited < std::chrono::seconds(5));
  CHECK(err.str().rfind("kumo destroy: waiting up to 1.5 s for the lock: cluster \"fest\"", 0) ==
        0);
  // Without --lock-timeout (0): refused at once, nothing said.
  std::ostringstream quiet;
  const auto now = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(acquire_waiting(lab.connector, hosts(), "fest", kCi, kTimeout, kNeverStale,
                                  warnings, cli::lock_waiter({}, "apply", quiet)),
                  LockHeld);
  CHECK(std::chrono::steady_clock::now() - now < std::chrono::seconds(1));
  CHECK(quiet.str().empty());
}
