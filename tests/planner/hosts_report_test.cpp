// hosts_report(desired, observed) on its own: hosts written out by hand with their facts and
// domains; what `kumo hosts` says each host is and what placement will still admit there.
#include "planner/hosts_report.h"

#include <catch2/catch.hpp>

#include "planner/placement.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

std::string cluster(const std::string& hosts, const std::string& vms = "") {
  return "cluster: fest\nvariables:\n  secret_uri: {sensitive: true, default: "
         "\"qemu+ssh://root:hunter2@hv9/system\"}\nhosts:\n" +
         hosts +
         "images:\n  deb: {path: /srv/deb.qcow2, checksum: \"sha256:" + std::string(64, 'a') +
         "\"}\n" + (vms.empty() ? "" : "vms:\n" + vms);
}

ObservedHost host(const std::string& name, int cpus, std::uint64_t memory, bool kvm = true) {
  ObservedHost h;
  h.host = name;
  h.uri = "test:///" + name;
  h.reachable = true;
  h.facts = test::host_facts(name, cpus, memory, kvm);
  return h;
}

void domain(ObservedHost& h, const std::string& name, int vcpus, std::uint64_t memory,
            std::optional<Ownership> owner = {}) {
  ObservedDomain d;
  d.name = name;
  d.state = "running";
  d.active = true;
  d.vcpus = d.max_vcpus = vcpus;
  d.memory = d.max_memory = memory;
  d.owner = std::move(owner);
  h.domains.push_back(d);
}

Ownership vm_of(const std::string& cluster, const std::string& instance) {
  return Ownership{cluster, "vm." + instance, "", std::nullopt, true};
}

const HostInfo& find(const HostsReport& r, const std::string& name) {
  for (const auto& h : r.hosts)
    if (h.name == name) return h;
  FAIL("no host " << name);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("admit is the host's room under its overcommit, every domain there counted", "[hosts]") {
  const auto desired = expand(
      config(cluster("  hv1: {uri: \"test:///hv1\", cpu_overcommit: 2, memory_overcommit: 1.5}\n",
                     "  web: {image: deb, cpus: 2, memory: 2GiB}\n")));
  auto hv1 = host("hv1", 8, 16 * GiB);
  domain(hv1, "web", 2, 2 * GiB, vm_of("fest", "web"));  // this cluster's
  domain(hv1, "db", 1, 1 * GiB, vm_of("other", "db"));   // another cluster's
  domain(hv1, "legacy", 3, 4 * GiB);                     // kumo did not make it
  const auto report = hosts_report(desired, {hv1});
  const auto& a = find(report, "hv1").admit;
  CHECK(a.cpu_overcommit == 2);
  CHECK(a.memory_overcommit == 1.5);
  CHECK(a.room.cpu_capacity == 16);
  CHECK(a.room.memory_capacity == 24 * GiB);
  CHECK(a.room.cpus_used == 6);
  CHECK(a.room.memory_used == 7 * GiB);
  CHECK(a.room.cpus_free() == 10);
  CHECK(a.room.memory_free() == 17 * GiB);
}

TEST_CASE("a VM of exactly what hosts says placement admits is placed, one vCPU or MiB more is not",
          "[hosts]") {
  const std::string hosts = "  hv1: {uri: \"test:///hv1\", cpu_overcommit: 1.5}\n";
  const std::string web = "  web: {image: deb, cpus: 2, memory: 2GiB}\n";
  auto hv1 = host("hv1", 5, 8 * GiB);  // 7.5 vCPUs: 7 whole ones
  domain(hv1, "web", 2, 2 * GiB, vm_of("fest", "web"));
  domain(hv1, "legacy", 1, 1 * GiB);
  const auto admit = find(hosts_report(expand(config(cluster(hosts, web))), {hv1}), "hv1").admit;
  REQUIRE(admit.room.cpus_free() == 4);
  REQUIRE(admit.room.memory_free() == 5 * GiB);

  auto fits = [&](int cpus, const std::string& memory) {
    auto desired =
        expand(config(cluster(hosts, web + "  big: {image: deb, cpus: " + std::to_string(cpus) +
                                         ", memory: " + memory + "}\n")));
    return !place({hv1}, desired).errors.has_errors();
  };
  CHECK(fits(4, "5GiB"));
  CHECK_FALSE(fits(5, "5GiB"));
  CHECK_FALSE(fits(4, "5121MiB"));
}

TEST_CASE("vms lists only this cluster's VMs on the host, sorted", "[hosts]") {
  const auto desired = expand(config(cluster("  hv1: {uri: \"test:///hv1\"}\n")));
  auto hv1 = host("hv1", 4, 8 * GiB);
  domain(hv1, "web-1", 1, GiB, vm_of("fest", "web-1"));
  domain(hv1, "web-0", 1, GiB, vm_of("fest", "web-0"));
  domain(hv1, "db-0", 1, GiB, vm_of("other", "db-0"));
  domain(hv1, "legacy", 1, GiB);
  const auto report = hosts_report(desired, {hv1});  // find() returns a reference into it
  const auto& info = find(report, "hv1");
  CHECK(info.vms == std::vector<std::string>{"web-0", "web-1"});
  CHECK(info.admit.room.cpus_used == 4);  // but every domain takes room
}

TEST_CASE("virt_type is what new VMs get: auto follows KVM, kvm without KVM is called out",
          "[hosts]") {
  const auto desired =
      expand(config(cluster("  a: {uri: \"test:///a\"}\n"
                            "  b: {uri: \"test:///b\"}\n"
                            "  q: {uri: \"test:///q\", virt_type: qemu}\n"
                            "  k: {uri: \"test:///k\", virt_type: kvm}\n")));
  auto b = host("b", 2, 4 * GiB, false);
  b.facts.kvm_reason = "KVM is not supported — check that /dev/kvm exists there";
  const auto report = hosts_report(
      desired, {host("a", 2, 4 * GiB), b, host("q", 2, 4 * GiB), host("k", 2, 4 * GiB, false)});
  CHECK(find(report, "a").virt_type == "kvm");
  CHECK(find(report, "b").virt_type == "qemu");
  CHECK_FALSE(find(report, "b").facts.kvm);
  CHECK(find(report, "b").facts.kvm_reason == b.facts.kvm_reason);
  CHECK(find(report, "q").virt_type == "qemu");
  CHECK(find(report, "k").virt_type == "kvm");
  CHECK(find(report, "k").virt_type_error.find("plan refuses it") != std::string::npos);
  CHECK(find(report, "a").virt_type_error.empty());
}

TEST_CASE("an unreachable host keeps its error and nothing else, the others are reported",
          "[hosts]") {
  const auto desired =
      expand(config(cluster("  hv1: {uri: \"test:///hv1\"}\n"
                            "  hv2: {uri: \"test:///hv2\"}\n"
                            "  hv3: {uri: \"test:///hv3\"}\n")));
  ObservedHost down;
  down.host = "hv2";
  down.error = "host hv2 (test:///hv2): connection refused — is sshd running there?";
  const auto report = hosts_report(desired, {host("hv1", 2, 4 * GiB), down});
  CHECK_FALSE(report.all_reachable());
  REQUIRE(report.hosts.size() == 3);
  CHECK(report.hosts[0].reachable);
  CHECK_FALSE(report.hosts[1].reachable);
  CHECK(report.hosts[1].error == down.error);
  CHECK(report.hosts[1].vms.empty());
  CHECK(report.hosts[1].virt_type.empty());
  CHECK_FALSE(report.hosts[2].reachable);  // never observed
  CHECK(report.hosts[2].error == "host hv3 was not observed");
  CHECK(hosts_report(desired, {host("hv1", 2, GiB), host("hv2", 2, GiB), host("hv3", 2, GiB)})
            .all_reachable());
}

TEST_CASE("a uri from a sensitive variable is shown masked, a password never", "[hosts]") {
  const auto desired =
      expand(config(cluster("  hv1: {uri: \"${var.secret_uri}\"}\n"
                            "  hv2: {uri: \"qemu+ssh://root:pw@hv2/system\"}\n")));
  const auto report = hosts_report(desired, {host("hv1", 2, GiB), host("hv2", 2, GiB)});
  CHECK(find(report, "hv1").uri == "(sensitive)");
  CHECK(find(report, "hv2").uri == "qemu+ssh://root:(redacted)@hv2/system");
}

TEST_CASE("the pool is the host's pool: capacity and free space, or that it is missing",
          "[hosts]") {
  const auto desired =
      expand(config(cluster("  hv1: {uri: \"test:///hv1\", pool: vms}\n"
                            "  hv2: {uri: \"test:///hv2\"}\n")));
  auto hv1 = host("hv1", 2, GiB);
  hv1.pools.push_back({"default",
                       "dir",
                       "/var/lib/libvirt/images",
                       true,
                       false,
                       100 * GiB,
                       50 * GiB,
                       {},
                       "",
                       std::nullopt});
  hv1.pools.push_back(
      {"vms", "dir", "/srv/vms", true, false, 200 * GiB, 150 * GiB, {}, "", std::nullopt});
  const auto report = hosts_report(desired, {hv1, host("hv2", 2, GiB)});
  const auto& pool = find(report, "hv1").pool;
  CHECK(pool.name == "vms");
  CHECK(pool.found);
  CHECK(pool.active);
  CHECK(pool.capacity == 200 * GiB);
  CHECK(pool.free == 150 * GiB);
  CHECK(find(report, "hv2").pool.name == "default");
  CHECK_FALSE(find(report, "hv2").pool.found);
}
