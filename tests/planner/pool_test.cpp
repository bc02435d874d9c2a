// Storage pools kumo makes (hosts.<h>.pools), on the fake lab: made before anything that lives
// in them, marked as the cluster's, used by the host's pool: and a data disk's pool:, started
// again when stopped, never redefined, removed only when nothing but kumo's own is left in them;
// pools kumo did not make are used and never changed; unknown pools are located plan errors.
#include <catch2/catch.hpp>

#include "planner/lock.h"
#include "planner/lock_pools.h"
#include "planner/plan_io.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;
using kumo::test::errors_of;
using kumo::test::Lab;
using kumo::test::plan_result;
using json = nlohmann::json;

namespace {

const std::string kPools = R"(
cluster: fest
hosts:
  hv1:
    uri: "test:///hv1"
    pool: fast
    pools:
      fast: {type: dir, path: /srv/kumo/fast}
      vg0: {type: logical, devices: [/dev/sdb, /dev/sdc]}
  hv2: {uri: "test:///hv2"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                           std::string(64, 'a') + R"("}
vms:
  db:
    image: deb
    host: hv1
    disks:
      data: 1GiB
      logs: {size: 2GiB, pool: vg0}
)";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

const ResourceChange* find(const Plan& p, const std::string& address) {
  for (const auto& c : p.changes)
    if (c.address.str() == address) return &c;
  return nullptr;
}

const ObservedPool* pool_on(Lab& lab, const std::string& host, const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  for (const auto& p : lab.host(host).pools)
    if (p.name == name) return &p;
  return nullptr;
}

std::string pool_of_volume(Lab& lab, const std::string& host, const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  for (const auto& v : lab.host(host).volumes)
    if (v.name == name) return v.pool;
  return "";
}

// Planning only read the hosts: no session was opened, nothing was made.
void nothing_changed(Lab& lab) {
  CHECK(lab.connector.calls().empty());
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    CHECK(lab.host(h).volumes.empty());
    CHECK(lab.host(h).domains.empty());
  }
}

}  // namespace

TEST_CASE("pools kumo makes come first, hold the VM's disks, and the next plan is clean",
          "[pool]") {
  Lab lab;
  const Plan p = lab.plan(config(kPools));
  const ResourceChange* fast = find(p, "pool.hv1/fast");
  const ResourceChange* vg0 = find(p, "pool.hv1/vg0");
  REQUIRE(fast);
  REQUIRE(vg0);
  CHECK(fast->action == Action::Create);
  CHECK(fast->pool()->type == "dir");
  CHECK(fast->pool()->path == "/srv/kumo/fast");
  CHECK(fast->pool()->cluster == "fest");
  CHECK(vg0->pool()->devices == std::vector<std::string>{"/dev/sdb", "/dev/sdc"});
  CHECK(vg0->reason.find("must hold no data") != std::string::npos);
  CHECK(p.summary().add == 3);  // two pools and the VM
  // The logs disk is made in its own pool, the rest in the host's.
  const ResourceChange* logs = find(p, "volume.db/data/logs");
  REQUIRE(logs);
  CHECK(logs->volume()->pool == "vg0");
  CHECK(find(p, "volume.db/data/data")->volume()->pool.empty());

  // A saved plan carries the pools and the disk's pool.
  std::string error;
  const auto back = plan_from_json(plan_to_json(p), &error);
  INFO(error);
  REQUIRE(back);
  CHECK(*find(*back, "pool.hv1/vg0")->pool() == *vg0->pool());
  CHECK(find(*back, "volume.db/data/logs")->volume()->pool == "vg0");

  const auto result = lab.apply(p);
  INFO(test::failures(result));
  REQUIRE(result.success());
  // Made before anything went into them.
  const long made = lab.connector.index_of("hv1 define_pool fast");
  REQUIRE(made >= 0);
  CHECK(made < lab.connector.index_of("hv1 create_volume"));
  CHECK(lab.connector.index_of("hv1 define_pool vg0") <
        lab.connector.index_of("hv1 create_volume"));
  REQUIRE(pool_on(lab, "hv1", "fast"));
  CHECK(pool_on(lab, "hv1", "fast")->owner_cluster == std::optional<std::string>("fest"));
  CHECK(pool_on(lab, "hv1", "vg0")->source_name == "vg0");
  CHECK(pool_of_volume(lab, "hv1", root_volume_name("fest", "db")) == "fast");
  CHECK(pool_of_volume(lab, "hv1", data_volume_name("fest", "db", "data")) == "fast");
  CHECK(pool_of_volume(lab, "hv1", data_volume_name("fest", "db", "logs")) == "vg0");
  const DomainSpec& spec = lab.connector.defined.at("hv1/db");
  std::map<std::string, std::string> pools;
  for (const auto& d : spec.disks) pools[d.volume] = d.pool;
  CHECK(pools[data_volume_name("fest", "db", "logs")] == "vg0");
  CHECK(pools[data_volume_name("fest", "db", "data")].empty());  // the session's: fast
  // A logical volume holds the guest's bytes as they are: raw, not qcow2.
  std::map<std::string, std::string> formats;
  for (const auto& d : spec.disks) formats[d.volume] = d.format;
  CHECK(formats[data_volume_name("fest", "db", "logs")] == "raw");
  CHECK(formats[data_volume_name("fest", "db", "data")] == "qcow2");

  const Plan again = lab.plan(config(kPools));
  INFO(again.changes.size());
  CHECK_FALSE(again.has_changes());
}

TEST_CASE("a stopped pool of kumo's is started again, and its definition is never changed",
          "[pool]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kPools))).success());
  {
    std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
    for (auto& p : lab.host("hv1").pools)
      if (p.name == "vg0") p.autostart = false;
  }
  const Plan p = lab.plan(config(kPools));
  const ResourceChange* vg0 = find(p, "pool.hv1/vg0");
  REQUIRE(vg0);
  CHECK(vg0->action == Action::Update);
  REQUIRE(vg0->attributes.size() == 1);
  CHECK(vg0->attributes[0].name == "autostart");
  CHECK(vg0->attributes[0].drift);
  REQUIRE(lab.apply(p).success());
  CHECK(pool_on(lab, "hv1", "vg0")->autostart);
  CHECK_FALSE(lab.plan(config(kPools)).has_changes());

  // A new path or other devices: an error naming what kumo made, nothing redefined.
  const auto moved = plan_result(lab, with(kPools, "/srv/kumo/fast", "/srv/other"));
  CHECK_FALSE(moved.plan);
  CHECK_THAT(errors_of(moved),
             Catch::Contains("kumo.yaml:8:7: error: pool.hv1/fast: kumo made this pool as dir on "
                             "/srv/kumo/fast; a pool's type, path and devices are fixed"));
  const auto devices = plan_result(lab, with(kPools, "/dev/sdb, /dev/sdc", "/dev/sdb"));
  CHECK_THAT(errors_of(devices), Catch::Contains("pool.hv1/vg0: kumo made this pool as logical "
                                                 "on /dev/sdb, /dev/sdc"));
}

TEST_CASE("a pool kumo did not make is used as it is and never changed", "[pool]") {
  Lab lab;
  // hv2's "default" exists (the fake's): a data disk may name it, and nothing touches it.
  const std::string text = with(kPools, "      logs: {size: 2GiB, pool: vg0}",
                                "      logs: {size: 2GiB, pool: default}");
  const Plan p = lab.plan(config(text));
  REQUIRE(lab.apply(p).success());
  CHECK(pool_of_volume(lab, "hv1", data_volume_name("fest", "db", "logs")) == "default");
  CHECK(lab.connector.count("hv1 define_pool default") == 0);
  CHECK_FALSE(lab.plan(config(text)).has_changes());

  // Listing it under pools: would make kumo own it: refused, located, nothing done.
  Lab fresh;
  const auto r =
      plan_result(fresh, with(kPools, "      vg0: {type: logical, devices: [/dev/sdb, /dev/sdc]}",
                              "      vg0: {type: logical, devices: [/dev/sdb, /dev/sdc]}\n"
                              "      default: {type: dir, path: /var/lib/libvirt/images}"));
  CHECK_FALSE(r.plan);
  CHECK_THAT(errors_of(r),
             Catch::Contains("kumo.yaml:10:7: error: pool.hv1/default: host \"hv1\" has a "
                             "storage pool \"default\" that kumo did not make, and kumo never "
                             "changes it"));
  nothing_changed(fresh);
}

TEST_CASE("unknown pools are located plan errors and nothing is changed", "[pool]") {
  Lab lab;
  // The host's pool: neither under pools: nor on the host.
  const auto host_pool = plan_result(lab, with(kPools, "    pool: fast", "    pool: fats"));
  CHECK_FALSE(host_pool.plan);
  CHECK_THAT(errors_of(host_pool),
             Catch::Contains("kumo.yaml:6:11: error: hosts.hv1: unknown pool \"fats\": host "
                             "\"hv1\" has \"default\", \"fast\", \"vg0\". Name one of them in "
                             "pool:, or list it under hosts.hv1.pools for kumo to make"));
  // A data disk's.
  const auto disk = plan_result(lab, with(kPools, "pool: vg0}", "pool: vg1}"));
  CHECK_FALSE(disk.plan);
  CHECK_THAT(errors_of(disk),
             Catch::Contains("kumo.yaml:19:32: error: vm.db: data disk \"logs\": unknown pool "
                             "\"vg1\" on host \"hv1\""));
  // Without pool: kumo uses "default", which a host may lack.
  {
    std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
    lab.host("hv2").pools.clear();
  }
  const auto none = plan_result(lab, with(with(kPools, "    host: hv1", "    host: hv2"),
                                          "      logs: {size: 2GiB, pool: vg0}\n", ""));
  CHECK_THAT(errors_of(none), Catch::Contains("kumo.yaml:10:3: error: hosts.hv2: unknown pool "
                                              "\"default\": host \"hv2\" has no pool. List it"));
  // A logical pool as the host's pool: the root overlays cannot live there.
  const auto lvm = plan_result(lab, with(kPools, "    pool: fast", "    pool: vg0"));
  CHECK_THAT(errors_of(lvm), Catch::Contains("kumo.yaml:6:11: error: hosts.hv1: pool \"vg0\" is "
                                             "a logical pool (LVM); the host's pool holds the "
                                             "VMs' root disks"));
  nothing_changed(lab);
}

TEST_CASE("a VM goes only where its data disk's pool is", "[pool]") {
  Lab lab;
  const std::string text = with(kPools, "    host: hv1\n", "");
  const Plan p = lab.plan(config(text));
  REQUIRE(find(p, "vm.db"));
  CHECK(find(p, "vm.db")->host == "hv1");  // only hv1 has (or will have) vg0
}

TEST_CASE("destroy removes the pools kumo made, last, unless something not kumo's is in them",
          "[pool]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kPools))).success());
  // Something made by hand in vg0 (a volume kumo never names).
  lab.add_volume("hv1", "backup.img", 1 << 20, "vg0");

  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(config(kPools), destroy);
  const ResourceChange* fast = find(p, "pool.hv1/fast");
  REQUIRE(fast);
  CHECK(fast->action == Action::Delete);
  CHECK_FALSE(find(p, "pool.hv1/vg0"));
  bool warned = false;
  for (const auto& w : p.warnings)
    warned = warned || w.find(
                           "pool.hv1/vg0: kumo made this pool but keeps it: it holds volumes "
                           "kumo will not remove (backup.img)") != std::string::npos;
  CHECK(warned);
  // The base image in fast goes with it; the pool is the last change.
  CHECK(&p.changes.back() == fast);  // the host's own pool, after every other pool there
  const auto& gone = fast->pool()->volumes;
  CHECK(std::any_of(gone.begin(), gone.end(),
                    [](const std::string& v) { return v.rfind("kumo-image_", 0) == 0; }));

  const auto result = lab.apply(p);
  INFO(test::failures(result));
  REQUIRE(result.success());
  CHECK_FALSE(pool_on(lab, "hv1", "fast"));
  REQUIRE(pool_on(lab, "hv1", "vg0"));
  CHECK(pool_of_volume(lab, "hv1", "backup.img") == "vg0");
  CHECK(lab.connector.index_of("hv1 delete_pool fast") >
        lab.connector.index_of("hv1 delete_domain"));

  // Emptied by hand, vg0 goes on the next destroy.
  {
    std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
    std::erase_if(lab.host("hv1").volumes,
                  [](const ObservedVolume& v) { return v.name == "backup.img"; });
  }
  const Plan again = lab.plan(config(kPools), destroy);
  REQUIRE(find(again, "pool.hv1/vg0"));
  REQUIRE(lab.apply(again).success());
  CHECK_FALSE(pool_on(lab, "hv1", "vg0"));
}

TEST_CASE("destroy removes the host's own pool after its other pools", "[pool]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kPools))).success());
  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(config(kPools), destroy);
  REQUIRE(p.changes.size() >= 2);
  CHECK(p.changes.back().address.str() == "pool.hv1/fast");
  CHECK(p.changes[p.changes.size() - 2].address.str() == "pool.hv1/vg0");
  REQUIRE(lab.apply(p).success());
  CHECK(lab.connector.index_of("hv1 delete_pool vg0") <
        lab.connector.index_of("hv1 delete_pool fast"));
}

TEST_CASE("a saved plan's pool is checked, not trusted", "[pool]") {
  Lab lab;
  const json doc = plan_to_json(lab.plan(config(kPools)));
  std::size_t at = 0;
  for (; at < doc["changes"].size(); ++at)
    if (doc["changes"][at]["address"] == "pool.hv1/vg0") break;
  REQUIRE(at < doc["changes"].size());
  std::string error;
  const std::vector<std::pair<std::string, json>> tampered = {
      {"/desired/devices", json::array({"/etc/passwd"})},
      {"/desired/devices", json::array({"/dev/../etc/passwd"})},
      {"/desired/type", "zfs"},
      {"/desired/cluster", "other"},
      {"/desired/name", "vg1"},
      {"/desired/path", "/srv/x"},
      {"/host", "hv2"},
  };
  for (const auto& [pointer, value] : tampered) {
    INFO(pointer << " = " << value.dump());
    json bad = doc;
    bad[json::json_pointer("/changes/" + std::to_string(at) + pointer)] = value;
    CHECK_FALSE(plan_from_json(bad, &error).has_value());
  }
}

TEST_CASE("the lock leaves out a host whose own pool kumo makes, until it is made", "[pool]") {
  Lab lab;
  const DesiredCluster desired = expand(config(kPools));
  const LockHolder me{"root", "here", "kumo apply", 4343, "2026-12-02T10:00:00Z", "tok-me"};
  std::vector<std::string> warnings;
  auto lock = ClusterLock::acquire(lab.connector, desired.targets(), "fest", me,
                                   std::chrono::milliseconds(500), {}, warnings);
  REQUIRE(lock->missing_pools().size() == 1);
  CHECK(lock->missing_pools().front().name == "hv1");
  CHECK_FALSE(pool_on(lab, "hv1", "fast"));  // nothing made while locking
  // hv1 is not locked: a step there is refused.
  auto session = lab.connector.connect(desired.targets().front(), std::chrono::milliseconds(500));
  CHECK_THROWS_AS(lock->verify("hv1", *session), HostError);

  const DesiredHost& hv1 = desired.hosts.front();
  make_lock_pools(lab.connector, {{hv1.target(), hv1.find_pool("fast")->spec}},
                  std::chrono::milliseconds(500));
  lock->extend({hv1.target()}, {}, warnings);
  CHECK(lock->missing_pools().empty());
  REQUIRE(pool_on(lab, "hv1", "fast"));
  CHECK_NOTHROW(lock->verify("hv1", *session));  // the same holder on every host
  CHECK(lock->release().empty());
  CHECK(pool_of_volume(lab, "hv1", lock_volume_name("fest")).empty());
}
