// A lock holder's run identity, and whether it is stale, judged with injected machines (and a
// directory laid out like /etc and /proc) rather than this one's.
#include "planner/run_identity.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

using namespace kumo;
namespace fs = std::filesystem;

namespace {

const std::string kMachine = "0123456789abcdef0123456789abcdef";
const std::string kBoot = "6f1c6e4e-2b7a-4a49-9d55-0a7c5d3c9e11";
const std::string kNs = "pid:[4026531836]";

// A machine with these processes (pid -> start time).
Machine machine(std::map<long, std::uint64_t> processes, const std::string& boot = kBoot) {
  Machine m;
  m.hostname = "ci-1";
  m.machine_id = kMachine;
  m.boot_id = boot;
  m.pid_ns = kNs;
  m.start_time = [processes](long pid) -> std::optional<std::uint64_t> {
    auto it = processes.find(pid);
    if (it == processes.end()) return std::nullopt;
    return it->second;
  };
  return m;
}

// The holder kumo (pid 4242, started at tick 1000) wrote on `m`.
LockHolder holder_on(const Machine& m) {
  LockHolder h{"root", "ci-1", "kumo apply", 0, "2026-11-26T09:00:00Z", "tok"};
  identify(h, m, 4242);
  return h;
}

}  // namespace

TEST_CASE("a holder is stale only when its run is certainly gone from this machine",
          "[lock][identity]") {
  const LockHolder h = holder_on(machine({{4242, 1000}}));
  REQUIRE(h.machine_id == kMachine);
  REQUIRE(h.boot_id == kBoot);
  REQUIRE(h.pid == 4242);
  REQUIRE(h.start_time == 1000);
  // Its process still runs: not stale.
  CHECK_FALSE(holder_is_stale(h, machine({{4242, 1000}})));
  // The same machine booted since: stale, even if some process has its pid again.
  CHECK(holder_is_stale(h, machine({{4242, 1000}}, "another-boot")));
  // No such process: stale.
  CHECK(holder_is_stale(h, machine({{1, 1}})));
  // Its pid reused by a process that started later: stale.
  CHECK(holder_is_stale(h, machine({{4242, 5000}})));
  // Another machine (a clone with the same hostname, another boot): never stale.
  Machine clone = machine({});
  clone.machine_id = "ffffffffffffffffffffffffffffffff";
  clone.boot_id = "another-boot";
  CHECK_FALSE(holder_is_stale(h, clone));
  // This machine, but another pid namespace (a container on the same kernel): never certain.
  Machine container = machine({});
  container.pid_ns = "pid:[4026532999]";
  CHECK_FALSE(holder_is_stale(h, container));
  // A machine that cannot say its id judges nothing stale.
  Machine unknown = machine({});
  unknown.machine_id.clear();
  CHECK_FALSE(holder_is_stale(h, unknown));
}

TEST_CASE("a holder of the old format (no machine id) keeps the hostname and pid rule",
          "[lock][identity]") {
  const auto old =
      LockHolder::from_json(R"({"user":"root","machine":"ci-1","command":"kumo apply","pid":4242,)"
                            R"("since":"2026-11-26T09:00:00Z","token":"tok"})");
  REQUIRE(old);
  CHECK(old->machine_id.empty());
  CHECK(holder_is_stale(*old, machine({})));
  CHECK_FALSE(holder_is_stale(*old, machine({{4242, 7}})));
  Machine elsewhere = machine({});
  elsewhere.hostname = "laptop";
  CHECK_FALSE(holder_is_stale(*old, elsewhere));
}

TEST_CASE("the run identity goes into the lock and comes back", "[lock][identity]") {
  const LockHolder h = holder_on(machine({{4242, 1000}}));
  const auto back = LockHolder::from_json(h.to_json());
  REQUIRE(back);
  CHECK(back->machine_id == kMachine);
  CHECK(back->boot_id == kBoot);
  CHECK(back->pid_ns == kNs);
  CHECK(back->start_time == 1000);
  CHECK(back->describe() == "root@ci-1 (pid 4242, kumo apply) since 2026-11-26T09:00:00Z");
}

TEST_CASE("the start time is field 22 of /proc/<pid>/stat, whatever the command's name",
          "[lock][identity]") {
  const std::string tail =
      " S 1 4242 4242 0 -1 4194560 1234 0 0 0 12 3 0 0 20 0 1 0 987654 123456789 2000";
  CHECK(stat_start_time("4242 (kumo)" + tail) == 987654u);
  CHECK(stat_start_time("4242 (a (b) c) d)" + tail) == 987654u);
  CHECK(stat_start_time("4242 (kumo) S 1 2 3") == std::nullopt);
  CHECK(stat_start_time("") == std::nullopt);
  CHECK(stat_start_time("garbage") == std::nullopt);
}

TEST_CASE("this machine is read under a root directory", "[lock][identity]") {
  char tmpl[] = "/tmp/kumo-identity-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const fs::path root = tmpl;
  fs::create_directories(root / "etc");
  fs::create_directories(root / "proc/sys/kernel/random");
  fs::create_directories(root / "proc/self/ns");
  fs::create_directories(root / "proc/4242");
  std::ofstream(root / "etc/machine-id") << kMachine << "\n";
  std::ofstream(root / "proc/sys/kernel/random/boot_id") << kBoot << "\n";
  fs::create_symlink(kNs, root / "proc/self/ns/pid");
  std::ofstream(root / "proc/4242/stat")
      << "4242 (kumo) S 1 4242 4242 0 -1 4194560 1 0 0 0 1 1 0 0 20 0 1 0 1000 1 1\n";
  const Machine m = local_machine(root.string());
  CHECK(m.machine_id == kMachine);
  CHECK(m.boot_id == kBoot);
  CHECK(m.pid_ns == kNs);
  CHECK(m.start_time(4242) == 1000u);
  CHECK(m.start_time(4243) == std::nullopt);
  CHECK_FALSE(holder_is_stale(holder_on(m), m));
  fs::remove_all(root);

  // And the real one: this process is its own live holder, never stale.
  const Machine here = local_machine();
  LockHolder me;
  identify(me, here, static_cast<long>(getpid()));
  CHECK_FALSE(me.machine_id.empty());
  CHECK(me.start_time > 0);
  CHECK_FALSE(holder_is_stale(me, here));
}
