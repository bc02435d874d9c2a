// Changing an applied cluster on the fake hosts: live vCPU/memory changes within the headroom,
// restarts beyond it, disks grown in place, DNS/DHCP entries changed live, count down, user-data
// recreates keeping data disks, and --replace. The cluster lock is in lock_test.cpp.
#include <catch2/catch.hpp>

#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

namespace {

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

const ResourceChange* change(const Plan& p, const std::string& address) {
  for (const auto& c : p.changes)
    if (c.address.str() == address) return &c;
  return nullptr;
}

// Applies `text` from nothing and checks it converged.
ClusterConfig applied(Lab& lab, const std::string& text) {
  auto cfg = config(text);
  const ExecResult r = lab.apply(lab.plan(cfg));
  INFO(failures(r));
  REQUIRE(r.success());
  REQUIRE_FALSE(lab.plan(cfg).has_changes());
  return cfg;
}

// Applies the plan for `text`, checks it succeeded and that nothing is left to do.
ExecResult converge(Lab& lab, const Plan& p, const ClusterConfig& cfg) {
  const ExecResult r = lab.apply(p);
  INFO(failures(r));
  REQUIRE(r.success());
  const Plan again = lab.plan(cfg);
  for (const auto& c : again.changes) INFO(c.address.str() + " " + to_string(c.action));
  CHECK_FALSE(again.has_changes());
  return r;
}

}  // namespace

TEST_CASE("VMs are defined with headroom, and memory and vCPUs within it change live", "[update]") {
  Lab lab;
  applied(lab, kCluster);
  const auto* d = &lab.host("hv1").domains.front();
  CHECK(d->memory == 512ull << 20);
  CHECK(d->max_memory == 1024ull << 20);
  CHECK(d->max_vcpus == 2);
  const auto cfg = config(with(with(kCluster, "memory: 512MiB", "memory: 768MiB"), "image: deb",
                               "image: deb\n    cpus: 2"));
  const Plan p = lab.plan(cfg);
  const auto* c = change(p, "vm.web-0");
  REQUIRE(c);
  CHECK(c->action == Action::Update);
  CHECK(c->disruption == Disruption::Live);
  lab.connector.log_.clear();
  converge(lab, p, cfg);
  CHECK(lab.connector.count("hv1 set_domain_memory web-0") == 1);
  CHECK(lab.connector.count("hv1 set_domain_vcpus web-0") == 1);
  CHECK(lab.connector.count("hv1 shutdown_domain") == 0);
  CHECK(lab.connector.count("hv1 start_domain") == 0);
  d = &lab.host("hv1").domains.front();
  CHECK(d->active);
  CHECK(d->memory == 768ull << 20);
  CHECK(d->max_memory == 1024ull << 20);  // maximums change only with a restart
}

TEST_CASE("memory beyond the headroom restarts the VM: shutdown, redefine, start, wait",
          "[update]") {
  Lab lab;
  applied(lab, kCluster);
  const auto cfg = config(with(kCluster, "memory: 512MiB", "memory: 2GiB"));
  const Plan p = lab.plan(cfg);
  const auto* c = change(p, "vm.web-0");
  REQUIRE(c);
  CHECK(c->disruption == Disruption::Restart);
  CHECK_THAT(c->reason, Catch::Contains("memory is beyond"));
  lab.connector.log_.clear();
  lab.connector.ignores_acpi.insert("web-1");
  const ExecResult r = converge(lab, p, cfg);
  auto& log = lab.connector;
  const long down = log.index_of("hv1 shutdown_domain web-0");
  const long define = log.index_of("hv1 define_domain web-0");
  const long start = log.index_of("hv1 start_domain web-0");
  REQUIRE(down >= 0);
  CHECK(down < define);
  CHECK(define < start);
  CHECK(log.count("hv1 set_domain_memory") == 0);
  CHECK(lab.host("hv1").domains.front().max_memory == 4ull << 30);
  CHECK_THAT(step(r, "hv2/vm.web-1/shutdown")->message, Catch::Contains("forced off"));
  CHECK(step(r, "hv1/vm.web-0/wait for cloud-init")->status == StepStatus::Ok);
}

TEST_CASE("disks grow in place, live under a running VM, and never shrink", "[update]") {
  Lab lab;
  applied(lab, kCluster);
  // web-1 is stopped: its disk is resized as a volume.
  for (auto& d : lab.host("hv2").domains) d.active = false, d.state = "shutoff";
  const auto cfg = config(with(kCluster, "disks: {data: 1GiB}", "disks: {data: 3GiB}"));
  const Plan p = lab.plan(cfg);
  const auto* grow = change(p, "volume.web-0/data/data");
  REQUIRE(grow);
  CHECK(grow->action == Action::Update);
  CHECK(grow->disruption == Disruption::Live);
  lab.connector.log_.clear();
  const ExecResult r = lab.apply(p);
  INFO(failures(r));
  REQUIRE(r.success());
  CHECK(lab.connector.count("hv1 resize_domain_disk web-0 vdb") == 1);
  CHECK(lab.connector.count("hv2 resize_volume kumo_fest_web-1_data-data") == 1);
  CHECK(lab.connector.count("delete_volume kumo_fest_web-0_data") == 0);
  for (const auto& v : lab.host("hv1").volumes) {
    if (v.name.find("data-data") != std::string::npos) CHECK(v.capacity == 3ull << 30);
  }
  // Shrinking: no plan, nothing done.
  lab.connector.log_.clear();
  auto r2 = make_plan(expand(config(kCluster)), lab, {});
  CHECK_FALSE(r2.plan);
  std::string errors;
  for (const auto& e : r2.errors.sorted()) errors += format_diagnostic(e) + "\n";
  CHECK_THAT(errors, Catch::Contains("data disk \"data\" cannot shrink from 3 GiB to 1 GiB"));
  for (const auto& call : lab.connector.calls()) CHECK(call.find("connect") != std::string::npos);
}

TEST_CASE("DNS names and DHCP entries change live, without touching the network", "[update]") {
  Lab lab;
  const std::string base = with(kCluster, "networks: [{network: front}]",
                                "networks: [{network: front, ip: 10.20.0.10}]");
  applied(lab, base);
  const auto cfg = config(
      with(base, "domain: fest.internal}", "domain: fest.internal, dns_hosts: {www: 10.20.0.10}}"));
  const Plan p = lab.plan(cfg);
  const auto* c = change(p, "network.front");
  REQUIRE(c);
  CHECK(c->action == Action::Update);
  CHECK(c->disruption == Disruption::Live);
  lab.connector.log_.clear();
  converge(lab, p, cfg);
  CHECK(lab.connector.count("hv1 update_network_hosts kumo_fest_front") == 1);
  CHECK(lab.connector.count("hv1 delete_network") == 0);
  CHECK(lab.connector.count("hv1 define_network") == 0);
  bool www = false;
  for (const auto& h : lab.host("hv1").networks.front().dns_hosts)
    www = www || (h.ip == "10.20.0.10" && h.names.front() == "www");
  CHECK(www);
  // count 3 -> 2: web-2 goes with its volumes, its DHCP entry leaves hv3's network live.
  const auto two = config(with(with(base, "count: 3", "count: 2"), "domain: fest.internal}",
                               "domain: fest.internal, dns_hosts: {www: 10.20.0.10}}"));
  const Plan down = lab.plan(two);
  CHECK(change(down, "vm.web-2")->action == Action::Delete);
  CHECK(change(down, "vm.web-0") == nullptr);
  CHECK(change(down, "vm.web-1") == nullptr);
  lab.connector.log_.clear();
  converge(lab, down, two);
  CHECK(lab.connector.count("hv3 delete_domain web-2") == 1);
  CHECK(lab.connector.count("hv1 delete_domain") == 0);
  CHECK(lab.connector.count("hv2 delete_domain") == 0);
  CHECK(lab.host("hv3").domains.empty());
}

TEST_CASE("a user-data change recreates the VM and keeps its data disk", "[update]") {
  Lab lab;
  applied(lab, kCluster);
  const auto cfg = config(
      with(kCluster, "cloud_init: {packages: []}", "cloud_init: {runcmd: [[touch, /var/tmp/v2]]}"));
  const Plan p = lab.plan(cfg);
  const auto* c = change(p, "vm.web-0");
  REQUIRE(c);
  CHECK(c->action == Action::Replace);
  CHECK(c->disruption == Disruption::Recreate);
  lab.connector.log_.clear();
  converge(lab, p, cfg);
  CHECK(lab.connector.count("hv1 delete_domain web-0") == 1);
  CHECK(lab.connector.count("hv1 delete_volume kumo_fest_web-0_root") == 1);
  CHECK(lab.connector.count("hv1 delete_volume kumo_fest_web-0_data") == 0);
  CHECK(lab.connector.count("hv1 create_volume kumo_fest_web-0_data") == 0);
}

TEST_CASE("replace on request recreates one VM, and an unknown address is an error", "[update]") {
  Lab lab;
  const auto cfg = applied(lab, kCluster);
  PlanOptions opts;
  opts.replace = {"vm.web-1"};
  const Plan p = lab.plan(cfg, opts);
  REQUIRE(p.summary().replace == 1);
  const auto* c = change(p, "vm.web-1");
  REQUIRE(c);
  CHECK(c->action == Action::Replace);
  CHECK_THAT(c->reason, Catch::Contains("--replace"));
  lab.connector.log_.clear();
  converge(lab, p, cfg);
  CHECK(lab.connector.count("hv2 delete_domain web-1") == 1);
  CHECK(lab.connector.count("hv2 create_volume kumo_fest_web-1_root") == 1);
  CHECK(lab.connector.count("hv2 delete_volume kumo_fest_web-1_data") == 0);
  CHECK(lab.connector.count("hv1 delete_domain") == 0);

  opts.replace = {"vm.web-7"};
  opts.timeout = std::chrono::milliseconds(500);
  auto bad = make_plan(expand(cfg), lab, opts);
  CHECK_FALSE(bad.plan);
  std::string errors;
  for (const auto& e : bad.errors.sorted()) errors += format_diagnostic(e) + "\n";
  CHECK_THAT(errors, Catch::Contains("--replace vm.web-7: no such VM in kumo.yaml"));
}

TEST_CASE("a VM never seen ready (apply killed while waiting) is waited for by the next apply",
          "[update]") {
  Lab lab;
  const auto cfg = applied(lab, kCluster);
  for (auto& d : lab.host("hv2").domains) {
    REQUIRE(d.owner);
    CHECK(d.owner->ready);   // apply records it
    d.owner->ready = false;  // what a kill -9 during "wait for cloud-init" leaves
  }
  const Plan p = lab.plan(cfg);
  REQUIRE(p.changes.size() == 1);
  CHECK(p.changes[0].address.str() == "vm.web-1");
  CHECK(p.changes[0].action == Action::Update);
  CHECK(p.changes[0].disruption == Disruption::None);
  CHECK_THAT(p.changes[0].reason, Catch::Contains("interrupted"));
  lab.connector.log_.clear();
  const ExecResult r = converge(lab, p, cfg);
  CHECK(step(r, "hv2/vm.web-1/wait for cloud-init")->status == StepStatus::Ok);
  CHECK(lab.connector.count("hv2 start_domain") == 0);
  CHECK(lab.connector.count("hv2 shutdown_domain") == 0);
  CHECK(lab.connector.count("hv2 set_domain_owner web-1") == 1);
}

TEST_CASE("a data disk is never deleted while its VM stays", "[update][refusal]") {
  Lab lab;
  applied(lab, kCluster);
  lab.connector.log_.clear();
  PlanOptions opts;
  opts.timeout = std::chrono::milliseconds(500);
  auto r = make_plan(expand(config(with(kCluster, "    disks: {data: 1GiB}\n", ""))), lab, opts);
  CHECK_FALSE(r.plan);
  std::string errors;
  for (const auto& e : r.errors.sorted()) errors += format_diagnostic(e) + "\n";
  CHECK_THAT(errors, Catch::Contains("vm.web-0: data disk \"data\" (kumo_fest_web-0_data-data") &&
                         Catch::Contains("kumo never deletes the data disk of a VM that stays") &&
                         Catch::Contains("kumo destroy --target vm.web-0"));
  for (const auto& call : lab.connector.calls()) CHECK(call.find("connect") != std::string::npos);
}

TEST_CASE("a data disk added to a running VM is hot-plugged: no restart", "[update]") {
  Lab lab;
  applied(lab, kCluster);
  // web-1 is stopped: it gets the disk in its definition only.
  for (auto& d : lab.host("hv2").domains) d.active = false, d.state = "shutoff";
  const std::string two = with(kCluster, "disks: {data: 1GiB}", "disks: {data: 1GiB, logs: 2GiB}");
  const auto cfg = config(two);
  const Plan p = lab.plan(cfg);
  const auto* logs = change(p, "volume.web-0/data/logs");
  REQUIRE(logs);
  CHECK(logs->action == Action::Create);
  CHECK(logs->disruption == Disruption::Live);
  CHECK_THAT(logs->reason,
             Catch::Contains("hot-plugged") && Catch::Contains("/dev/disk/by-id/virtio-logs"));
  const auto* vm = change(p, "vm.web-0");
  REQUIRE(vm);
  CHECK(vm->action == Action::Update);
  CHECK(vm->disruption == Disruption::Live);
  CHECK(change(p, "volume.web-1/data/logs")->disruption == Disruption::None);
  lab.connector.log_.clear();
  converge(lab, p, cfg);
  auto& log = lab.connector;
  // Running: vda root, vdb data, vdc the seed; the new disk takes the first free name.
  CHECK(log.count("hv1 attach_disk web-0 kumo_fest_web-0_data-logs") == 1);
  CHECK(log.count("hv1 attach_disk web-0 kumo_fest_web-0_data-logs.qcow2 vdd") == 1);
  CHECK(log.index_of("hv1 create_volume kumo_fest_web-0_data-logs") <
        log.index_of("hv1 attach_disk web-0"));
  CHECK(log.index_of("hv1 attach_disk web-0") < log.index_of("hv1 define_domain web-0"));
  CHECK(log.count("hv1 shutdown_domain") == 0);
  CHECK(log.count("hv1 start_domain") == 0);
  CHECK(log.count("hv2 attach_disk") == 0);  // stopped: the definition is enough
  CHECK(lab.host("hv1").domains.front().active);
  // The definition puts it in name order, before the seed: vdc at the next boot.
  bool defined = false;
  for (const auto& disk : lab.host("hv1").domains.front().disks)
    defined = defined || (disk.path.find("data-logs") != std::string::npos && disk.target == "vdc");
  CHECK(defined);
  // Growing it later resizes the disk it runs as (vdd), not its definition's name (the seed).
  const auto bigger = config(with(two, "logs: 2GiB", "logs: 3GiB"));
  log.log_.clear();
  converge(lab, lab.plan(bigger), bigger);
  CHECK(log.count("hv1 resize_domain_disk web-0 vdd") == 1);
  CHECK(log.count("hv1 resize_domain_disk web-0 vdc") == 0);
}

TEST_CASE("a data volume made but never attached is attached by the next apply", "[update]") {
  Lab lab;
  applied(lab, kCluster);
  const auto cfg = config(with(kCluster, "disks: {data: 1GiB}", "disks: {data: 1GiB, logs: 2GiB}"));
  lab.connector.fail.insert("hv1 attach_disk");
  const ExecResult r = lab.apply(lab.plan(cfg));
  CHECK_FALSE(r.success());
  lab.connector.fail.clear();
  // The volume is there, the domain does not have it: the plan says so, and attaches it live.
  const Plan p = lab.plan(cfg);
  CHECK(change(p, "volume.web-0/data/logs") == nullptr);
  const auto* vm = change(p, "vm.web-0");
  REQUIRE(vm);
  CHECK(vm->disruption == Disruption::Live);
  CHECK_THAT(vm->reason, Catch::Contains("not attached"));
  bool listed = false;
  for (const auto& a : vm->attributes) listed = listed || a.name == "disks.logs";
  CHECK(listed);
  lab.connector.log_.clear();
  converge(lab, p, cfg);
  CHECK(lab.connector.count("hv1 attach_disk web-0 kumo_fest_web-0_data-logs") == 1);
  CHECK(lab.connector.count("hv1 create_volume") == 0);
  CHECK(lab.connector.count("hv1 shutdown_domain") == 0);
}
