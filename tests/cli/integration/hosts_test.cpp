// kumo hosts on libvirt's test:///default driver (in kumo's own process): what the driver says
// its host is, in JSON and as a table; a host that cannot be reached is reported as such, with
// exit 1, the others still shown; a bad file is the usual located error.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/cli/run_kumo.h"

using kumo::test::run_kumo;
using kumo::test::TempDir;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;
constexpr const char* kMissingSocket = "/nonexistent/kumo-hosts-test/libvirt-sock";

struct Cluster {
  TempDir dir;
  std::string file;
  std::vector<std::string> env{"HOME=" + dir.path(), "NO_COLOR=1"};
  explicit Cluster(const std::string& hosts) {
    file = dir.write("kumo.yaml",
                     "cluster: hosts-test\nvariables:\n  secret_uri: {sensitive: "
                     "true, default: \"qemu+unix:///system?socket=" +
                         std::string(kMissingSocket) + "-secret\"}\nhosts:\n" + hosts);
  }
  kumo::test::Run hosts(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"hosts", "-f", file, "--timeout", "5"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_kumo(args, env);
  }
};

}  // namespace

TEST_CASE("kumo hosts --json reports what the test driver's host is and can take", "[cli][hosts]") {
  Cluster c("  t: {uri: \"test:///default\", pool: default-pool}\n");
  const auto r = c.hosts({"--json"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const auto out = nlohmann::json::parse(r.out);
  CHECK(out["schema_version"] == 1);
  CHECK(out["cluster"] == "hosts-test");
  REQUIRE(out["hosts"].size() == 1);
  const auto& h = out["hosts"][0];
  INFO(h.dump(2));
  CHECK(h["name"] == "t");
  CHECK(h["uri"] == "test:///default");
  CHECK(h["reachable"] == true);
  CHECK(h["error"].is_null());
  CHECK(h["libvirt_version"].get<std::string>().find('.') != std::string::npos);
  CHECK(h["hypervisor"] == "TEST");
  CHECK(h["hypervisor_version"] == "0.0.2");
  CHECK(h["qemu_version"].is_null());  // not a QEMU host
  // The test driver offers <domain type='test'> only: no KVM, with a reason; new VMs get qemu.
  CHECK(h["kvm"] == false);
  CHECK(h["kvm_reason"].get<std::string>().find("no KVM guests") != std::string::npos);
  CHECK(h["virt_type"] == "qemu");
  CHECK(h["cpu_model"].is_null());  // its host <cpu> names no model
  CHECK(h["cpu_features"] == nlohmann::json::array());
  CHECK(h["nested"].is_null());
  CHECK(h["cpus"] == 16);
  CHECK(h["memory_bytes"] == 3 * GiB);
  CHECK(h["memory_free_bytes"] == 3 << 20);  // what the test driver's cells say
  CHECK(h["pool"]["name"] == "default-pool");
  CHECK(h["pool"]["found"] == true);
  CHECK(h["pool"]["active"] == true);
  CHECK(h["pool"]["capacity_bytes"] == 100 * GiB);
  CHECK(h["pool"]["free_bytes"] == 100 * GiB);
  CHECK(h["vms"] == nlohmann::json::array());  // its domain "test" is not this cluster's
  // 16 CPUs × cpu_overcommit 4, 3 GiB × 1; the domain "test" (2 vCPUs, 2 GiB) takes its part.
  CHECK(h["admit"]["capacity"]["vcpus"] == 64);
  CHECK(h["admit"]["capacity"]["memory_bytes"] == 3 * GiB);
  CHECK(h["admit"]["used"]["vcpus"] == 2);
  CHECK(h["admit"]["used"]["memory_bytes"] == 2 * GiB);
  CHECK(h["admit"]["vcpus"] == 62);
  CHECK(h["admit"]["memory_bytes"] == 1 * GiB);
  CHECK(h["admit"]["cpu_overcommit"] == 4.0);
  CHECK(h["admit"]["memory_overcommit"] == 1.0);
}

TEST_CASE("kumo hosts shows a table and why a host has no KVM", "[cli][hosts]") {
  Cluster c("  t: {uri: \"test:///default\", pool: default-pool, cpu_overcommit: 2}\n");
  const auto r = c.hosts();
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.rfind("HOST  KVM  VIRT  CPUS  MEMORY FREE", 0) == 0);
  CHECK(
      r.out.find("\nt     no   qemu  16    3.0 MiB of 3.0 GiB  100 GiB of 100 GiB  0    30 vCPUs, "
                 "1.0 GiB\n") != std::string::npos);
  CHECK(r.out.find("\nt  test:///default\n    libvirt ") != std::string::npos);
  CHECK(r.out.find(", TEST 0.0.2; overcommit: cpu 2, memory 1\n") != std::string::npos);
  CHECK(r.out.find("    no KVM: libvirt offers no KVM guests") != std::string::npos);
}

TEST_CASE("kumo hosts reports an unreachable host with its error, the others too, and exits 1",
          "[cli][hosts]") {
  Cluster c(std::string("  gone: {uri: \"qemu+unix:///system?socket=") + kMissingSocket +
            "\"}\n  t: {uri: \"test:///default\", pool: default-pool}\n"
            "  secret: {uri: \"${var.secret_uri}\"}\n");
  const auto r = c.hosts({"--json"});
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  const auto out = nlohmann::json::parse(r.out);
  REQUIRE(out["hosts"].size() == 3);
  const auto& gone = out["hosts"][0];
  CHECK(gone["reachable"] == false);
  const std::string error = gone["error"];
  CHECK(error.rfind("host gone (qemu+unix:///system?socket=", 0) == 0);
  CHECK(error.find(kMissingSocket) != std::string::npos);
  CHECK(error.find("is libvirtd running there?") != std::string::npos);
  for (const char* field : {"kvm", "virt_type", "cpus", "memory_bytes", "vms", "pool", "admit"})
    CHECK(gone[field].is_null());
  CHECK(out["hosts"][1]["reachable"] == true);
  CHECK(out["hosts"][1]["cpus"] == 16);
  // A URI from a sensitive variable is never shown, not even in the error.
  CHECK(out["hosts"][2]["reachable"] == false);
  CHECK(out["hosts"][2]["uri"] == "(sensitive)");
  CHECK(r.out.find("-secret") == std::string::npos);
  CHECK(r.err.find("-secret") == std::string::npos);
  CHECK(r.err.find("kumo hosts: host gone (") != std::string::npos);
  // The table says the same.
  const auto human = c.hosts();
  CHECK(human.status == 1);
  CHECK(human.out.find("\ngone    ?    -     -     unreachable") != std::string::npos);
  CHECK(human.out.find("    unreachable: host gone (") != std::string::npos);
  CHECK(human.out.find("-secret") == std::string::npos);
}

TEST_CASE("kumo hosts on a bad file is the usual located error, exit 1, no host asked",
          "[cli][hosts]") {
  TempDir dir;
  const std::string file =
      dir.write("kumo.yaml", "cluster: x\nhosts:\n  t: {uri: 42x, pool: [1]}\n");
  const auto r = run_kumo({"hosts", "-f", file, "--json"}, {"HOME=" + dir.path(), "NO_COLOR=1"});
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find(file + ":3:") != std::string::npos);
  CHECK(r.err.find("error:") != std::string::npos);
  const auto missing = run_kumo({"hosts", "-f", dir / "nope.yaml"}, {"HOME=" + dir.path()});
  CHECK(missing.status == 1);
  CHECK(missing.err.find("nope.yaml") != std::string::npos);
}
