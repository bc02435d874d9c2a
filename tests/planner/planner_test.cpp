// make_plan on the fake provider: actions, disruption, placement, drift, ownership, refusals.
#include "planner/planner.h"

#include <catch2/catch.hpp>

#include "planner/config/loader.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::FakeProvider;
using kumo::test::V;

namespace {

using kumo::test::config;

std::string three_hosts(const std::string& image = "/srv/deb.qcow2",
                        const std::string& cidr = "10.20.0.0/24") {
  return R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
  hv3: {uri: "test:///hv3"}
images:
  deb: {path: )" +
         image + R"(}
networks:
  front: {cidr: )" +
         cidr + R"(, domain: fest.internal}
)";
}

const std::string kThreeHosts = three_hosts();

PlanResult plan(const ClusterConfig& cfg, FakeProvider& p, PlanOptions opts = {}) {
  opts.timeout = std::chrono::milliseconds(500);
  return make_plan(expand(cfg), p, opts);
}

std::string errors_of(const PlanResult& r) {
  std::string out;
  for (const auto& d : r.errors.sorted()) out += format_diagnostic(d) + "\n";
  return out;
}

Plan ok(const PlanResult& r) {
  INFO(errors_of(r));
  REQUIRE(r.plan.has_value());
  return *r.plan;
}

const ResourceChange* find(const Plan& p, const std::string& address,
                           const std::string& host = "") {
  for (const auto& c : p.changes) {
    if (c.address.str() == address && (host.empty() || c.host == host)) return &c;
  }
  return nullptr;
}

const AttributeChange* attribute(const ResourceChange& c, const std::string& name) {
  for (const auto& a : c.attributes) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// Three fake hosts, with sessions: apply is the real executor on them.
using ThreeHosts = kumo::test::Lab;

// Plans and applies: the state the next plan sees is what the executor left.
void apply(const ClusterConfig& cfg, ThreeHosts& p) {
  const Plan pl = ok(plan(cfg, p));
  const ExecResult r = p.apply(pl);
  INFO(kumo::test::failures(r));
  REQUIRE(r.success());
}

}  // namespace

TEST_CASE("from nothing: every VM, volume and network is created", "[planner]") {
  auto cfg = config(kThreeHosts + R"(vms:
  web: {count: 2, image: deb, disks: {data: 1GiB}}
)");
  ThreeHosts p;
  const Plan pl = ok(plan(cfg, p));
  CHECK(pl.summary().add == 2 + 3);  // two VMs, the network on each of three hosts
  CHECK(pl.summary().change == 0);
  REQUIRE(find(pl, "vm.web-0"));
  CHECK(find(pl, "vm.web-0")->action == Action::Create);
  CHECK(find(pl, "volume.web-0/root")->parent->str() == "vm.web-0");
  CHECK(find(pl, "volume.web-0/seed"));
  CHECK(find(pl, "volume.web-0/data/data")->action == Action::Create);
  CHECK(find(pl, "network.front", "hv2")->action == Action::Create);
  // Networks come before the VMs that use them.
  CHECK(find(pl, "network.front", "hv1") < find(pl, "vm.web-0"));
  CHECK(p.calls().size() == 3);
}

TEST_CASE("a second plan after apply finds nothing to do", "[planner]") {
  auto cfg = config(kThreeHosts + R"(
  back: {cidr: 10.30.0.0/24, mode: isolated, dhcp: false, hosts: [hv1, hv2]}
vms:
  web:
    count: 3
    image: deb
    networks: [{network: front, ip: 10.20.0.10}]
    placement: {anti_affinity: web}
  db:
    image: deb
    host: hv2
    disks: {pg: 4GiB}
    networks: [front, {network: back, ip: 10.30.0.5}]
)");
  ThreeHosts p;
  apply(cfg, p);
  const Plan again = ok(plan(cfg, p));
  INFO(again.changes.size() << " changes, first: "
                            << (again.changes.empty() ? "" : again.changes[0].address.str()));
  CHECK_FALSE(again.has_changes());
}

TEST_CASE("spread places instances on the emptiest hosts, placement is stable and deterministic",
          "[planner][placement]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 3, image: deb}\n");
  ThreeHosts p;
  auto first = plan(cfg, p);
  ok(first);
  CHECK(first.desired.vms[0].host == "hv1");
  CHECK(first.desired.vms[1].host == "hv2");
  CHECK(first.desired.vms[2].host == "hv3");
  // Same input, same answer.
  CHECK(plan(cfg, p).desired.vms[2].host == "hv3");

  // An existing instance never moves, even when another host now looks better.
  auto cfg2 = config(kThreeHosts + "vms:\n  web: {count: 4, image: deb}\n");
  REQUIRE(p.apply(*first.plan).success());
  p.add_domain("hv1", "someone-elses", std::nullopt, 8ull << 30);
  auto second = plan(cfg2, p);
  const Plan pl = ok(second);
  CHECK(second.desired.vms[0].host == "hv1");
  CHECK(pl.summary().add == 1);
  CHECK(find(pl, "vm.web-3")->host == "hv2");  // hv1 has less free memory now
}

TEST_CASE("pack fills the fullest host that still fits", "[planner][placement]") {
  auto cfg = config(kThreeHosts +
                    "vms:\n  batch: {count: 3, image: deb, memory: 1GiB, placement: pack}\n");
  ThreeHosts p;
  p.add_domain("hv2", "busy", std::nullopt, 30ull << 30);
  auto r = plan(cfg, p);
  ok(r);
  CHECK(r.desired.vms[0].host == "hv2");
  CHECK(r.desired.vms[1].host == "hv2");  // exactly full now: 30 + 1 + 1 = 32 GiB
  CHECK(r.desired.vms[2].host == "hv1");
}

TEST_CASE("anti-affinity: never two of a group on one host, when impossible, a plan error",
          "[planner][placement]") {
  auto cfg =
      config(kThreeHosts + "vms:\n  web: {count: 3, image: deb, placement: {anti_affinity: g}}\n");
  ThreeHosts p;
  p.add_domain("hv3", "huge", std::nullopt, 32ull << 30);  // hv3 has no room left
  auto r = plan(cfg, p);
  CHECK_FALSE(r.plan.has_value());
  CHECK(errors_of(r) ==
        "kumo.yaml:12:3: error: vm \"web-2\" (512 MiB, 1 vCPU each) fit on no host; hv1: already "
        "holds a member of "
        "anti_affinity group \"g\"; hv2: already holds a member of anti_affinity group \"g\"; hv3: "
        "not enough "
        "memory (0 B free of 32 GiB)\n");
}

TEST_CASE("capacity: a pinned VM that over-fills its host is refused with the numbers",
          "[planner][placement]") {
  auto cfg = config(kThreeHosts + "vms:\n  big: {image: deb, memory: 40GiB, host: hv1}\n");
  ThreeHosts p;
  auto r = plan(cfg, p);
  CHECK(errors_of(r) ==
        "kumo: error: host \"hv1\" would be over-full: its VMs would need 40 GiB of memory, it has "
        "32 GiB "
        "(memory_overcommit 1.00)\n");
}

TEST_CASE("objects kumo did not make are never touched, and block the names they hold",
          "[planner][ownership]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1}\n");
  ThreeHosts p;
  p.add_domain("hv2", "legacy");
  p.add_network("hv2", "default");
  p.add_volume("hv2", "legacy.qcow2", 1 << 30);
  p.add_domain("hv3", "web-old", Ownership{"other-cluster", "vm.web-old", "", std::nullopt});
  const Plan pl = ok(plan(cfg, p));
  for (const auto& c : pl.changes) {
    CHECK(c.address.str().find("legacy") == std::string::npos);
    CHECK(c.address.str() != "vm.web-old");
    CHECK(c.action != Action::Delete);
  }

  p.add_domain("hv1", "web");  // unowned, same name
  auto r = plan(cfg, p);
  CHECK(errors_of(r) ==
        "kumo.yaml:12:3: error: host \"hv1\": a domain named \"web\" already exists and kumo did "
        "not make it; "
        "kumo never touches it. Rename the VM or remove that domain\n");
}

TEST_CASE("drift: memory changed behind kumo's back is shown and converged", "[planner][drift]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, memory: 1GiB}\n");
  ThreeHosts p;
  apply(cfg, p);
  p.host("hv1").domains[0].memory = 768ull << 20;  // someone ran virsh setmem
  const Plan pl = ok(plan(cfg, p));
  const ResourceChange* c = find(pl, "vm.web");
  REQUIRE(c);
  CHECK(c->action == Action::Update);
  CHECK(c->disruption == Disruption::Live);
  const AttributeChange* m = attribute(*c, "memory");
  REQUIRE(m);
  CHECK(m->drift);
  CHECK(m->before == V("768 MiB"));
  CHECK(m->after == V("1 GiB"));
}

TEST_CASE("growing memory past the domain's maximum needs a restart", "[planner]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, memory: 1GiB}\n");
  ThreeHosts p;
  apply(cfg, p);
  auto within = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, memory: 2GiB}\n");
  const Plan pw = ok(plan(within, p));
  CHECK(find(pw, "vm.web")->disruption == Disruption::Live);
  auto beyond = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, memory: 3GiB}\n");
  const Plan pb = ok(plan(beyond, p));
  const ResourceChange* c = find(pb, "vm.web");
  CHECK(c->action == Action::Update);
  CHECK(c->disruption == Disruption::Restart);
  CHECK_FALSE(attribute(*c, "memory")->drift);
}

TEST_CASE("a new image or user-data replaces the VM, ignore only updates the seed", "[planner]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, disks: {d: 1GiB}}\n");
  ThreeHosts p;
  apply(cfg, p);
  auto img = config(three_hosts("/srv/deb-new.qcow2") +
                    "vms:\n  web: {image: deb, host: hv1, disks: {d: 1GiB}}\n");
  const Plan pimg = ok(plan(img, p));
  const ResourceChange* c = find(pimg, "vm.web");
  REQUIRE(c);
  CHECK(c->action == Action::Replace);
  CHECK(c->disruption == Disruption::Recreate);
  CHECK(attribute(*c, "image")->forces_replacement);
  CHECK_FALSE(c->destroys_data);  // the data disk is kept and reattached

  auto ud =
      config(kThreeHosts +
             "vms:\n  web: {image: deb, host: hv1, disks: {d: 1GiB}, cloud_init: {runcmd: [x]}}\n");
  auto r = plan(ud, p);
  CHECK(find(ok(r), "vm.web")->action == Action::Replace);
  // The document (masked only where values came from sensitive variables), forcing the new VM.
  CHECK(attribute(*find(*r.plan, "vm.web"), "user_data")->document);
  CHECK(attribute(*find(*r.plan, "vm.web"), "user_data")->forces_replacement);
  CHECK_FALSE(attribute(*find(*r.plan, "vm.web"), "user_data")->sensitive);

  auto ignore =
      config(kThreeHosts +
             "vms:\n  web: {image: deb, host: hv1, disks: {d: 1GiB}, cloud_init: {runcmd: [x]},"
             " lifecycle: {on_user_data_change: ignore}}\n");
  const Plan pi = ok(plan(ignore, p));
  CHECK(find(pi, "vm.web")->action == Action::Update);
  CHECK(find(pi, "volume.web/seed")->action == Action::Replace);
}

TEST_CASE("prevent_destroy refuses a plan that would replace or delete the VM",
          "[planner][refusal]") {
  auto cfg = config(kThreeHosts +
                    "vms:\n  db: {image: deb, host: hv1, lifecycle: {prevent_destroy: true}}\n");
  ThreeHosts p;
  apply(cfg, p);
  auto moved = config(kThreeHosts +
                      "vms:\n  db: {image: deb, host: hv2, lifecycle: {prevent_destroy: true}}\n");
  // A move keeps the VM and its data: prevent_destroy does not stand in its way.
  const Plan mv = ok(plan(moved, p));
  CHECK(find(mv, "vm.db")->action == Action::Move);
  CHECK(mv.summary().destroy == 0);
  // Made anew on the other host (its image changes too), it would be destroyed: refused.
  auto remade = config(three_hosts("/srv/deb2.qcow2") +
                       "vms:\n  db: {image: deb, host: hv2, lifecycle: {prevent_destroy: true}}\n");
  auto r = plan(remade, p);
  CHECK(
      errors_of(r).find(
          "vm.db has lifecycle.prevent_destroy, but moving it from hv1 to hv2 would destroy it") !=
      std::string::npos);
  auto removed = config(kThreeHosts + "vms: {}\n");
  CHECK(errors_of(plan(removed, p)) ==
        "kumo: error: host \"hv1\": vm.db has lifecycle.prevent_destroy; set prevent_destroy: "
        "false and apply "
        "before removing it from the file\n");
}

TEST_CASE("count down deletes the highest-numbered instances with their volumes", "[planner]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 3, image: deb, disks: {d: 1GiB}}\n");
  ThreeHosts p;
  apply(cfg, p);
  auto fewer = config(kThreeHosts + "vms:\n  web: {count: 2, image: deb, disks: {d: 1GiB}}\n");
  const Plan pl = ok(plan(fewer, p));
  CHECK(pl.summary().destroy == 1);
  const ResourceChange* c = find(pl, "vm.web-2");
  REQUIRE(c);
  CHECK(c->action == Action::Delete);
  CHECK(c->destroys_data);
  CHECK(find(pl, "volume.web-2/data/d")->destroys_data);
  CHECK(find(pl, "volume.web-2/root")->action == Action::Delete);
  // Deletes come after everything else.
  CHECK(&pl.changes.back() >= c);
}

TEST_CASE("disks grow in place, shrinking is refused", "[planner][refusal]") {
  auto cfg =
      config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, disk: 4GiB, disks: {d: 1GiB}}\n");
  ThreeHosts p;
  apply(cfg, p);
  auto grow =
      config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, disk: 8GiB, disks: {d: 2GiB}}\n");
  const Plan pl = ok(plan(grow, p));
  CHECK(find(pl, "vm.web")->action == Action::Update);
  CHECK(find(pl, "vm.web")->disruption == Disruption::Live);
  CHECK(find(pl, "volume.web/root")->action == Action::Update);
  CHECK(find(pl, "volume.web/data/d")->action == Action::Update);
  auto shrink =
      config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, disk: 2GiB, disks: {d: 1GiB}}\n");
  CHECK(errors_of(plan(shrink, p)) ==
        "kumo.yaml:12:3: error: vm.web: disk cannot shrink from 4 GiB to 2 GiB (kumo only grows "
        "disks)\n");
}

TEST_CASE("network edits: DHCP host entries change live, a new CIDR replaces the network",
          "[planner][network]") {
  auto cfg =
      config(kThreeHosts +
             "vms:\n  web: {image: deb, host: hv1, networks: [{network: front, ip: 10.20.0.5}]}\n");
  ThreeHosts p;
  apply(cfg, p);
  auto moved_ip =
      config(kThreeHosts +
             "vms:\n  web: {image: deb, host: hv1, networks: [{network: front, ip: 10.20.0.6}]}\n");
  const Plan pl = ok(plan(moved_ip, p));
  const ResourceChange* net = find(pl, "network.front", "hv1");
  REQUIRE(net);
  CHECK(net->action == Action::Update);
  CHECK(net->disruption == Disruption::Live);
  CHECK(attribute(*net, "dhcp_hosts"));

  auto recidr = config(three_hosts("/srv/deb.qcow2", "10.21.0.0/24") +
                       "vms:\n  web: {image: deb, host: hv1}\n");
  const Plan pr = ok(plan(recidr, p));
  const ResourceChange* n1 = find(pr, "network.front", "hv1");
  REQUIRE(n1);
  CHECK(n1->action == Action::Replace);
  CHECK(n1->reason == "the network is recreated; running VMs lose connectivity meanwhile: web");
  CHECK(attribute(*n1, "address")->forces_replacement);
}

TEST_CASE("an unreachable host fails the plan unless skipped, and then the plan says so",
          "[planner][hosts]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 2, image: deb}\n");
  ThreeHosts p;
  p.unreachable.insert("hv2");
  auto r = plan(cfg, p);
  CHECK(errors_of(r) ==
        "kumo: error: host hv2 (test:///hv2): connection refused (use --skip-unreachable to plan "
        "the other hosts)\n");
  PlanOptions skip;
  skip.skip_unreachable = true;
  auto s = plan(cfg, p, skip);
  const Plan pl = ok(s);
  CHECK(pl.hosts[1].skipped);
  CHECK(pl.warnings.at(0) ==
        "host hv2 (test:///hv2) was NOT looked at: host hv2 (test:///hv2): connection refused. "
        "Nothing on it is planned.");
  // New instances are not created while they might exist on the host nobody looked at.
  CHECK_FALSE(find(pl, "vm.web-0"));
}

TEST_CASE("a checksum list over plain http warns like checksum: none, passwords never show",
          "[planner][hosts]") {
  std::string text = kThreeHosts;
  text.replace(text.find("test:///hv2"), 11, "qemu+tcp://ops:hunter2@hv2/system");
  text.replace(text.find("deb: {path: /srv/deb.qcow2}"), 27,
               "deb: {url: \"https://u:pw@mirror/deb.qcow2?token=t0p\", "
               "checksum_url: \"http://u:pw@mirror/SHA256SUMS?token=t0p\"}\n"
               "  raw: {url: \"https://mirror/raw.qcow2\", checksum: none}");
  auto cfg = config(text + "vms:\n  web: {image: deb, host: hv1}\n");
  ThreeHosts p;
  p.unreachable.insert("hv2");
  PlanOptions skip;
  skip.skip_unreachable = true;
  const Plan pl = ok(plan(cfg, p, skip));
  // checksum: none is said once, where the file says it (the loader's located warning), and
  // marked on the image's line when the plan uses it; not a third time as a plan warning.
  REQUIRE(pl.warnings.size() == 2);
  CHECK_THAT(pl.warnings[0],
             Catch::Matchers::StartsWith(
                 "host hv2 (qemu+tcp://ops:(redacted)@hv2/system) was NOT looked at: "));
  CHECK(pl.warnings[1] ==
        "image deb is not really verified: its checksum_url "
        "http://(redacted)@mirror/SHA256SUMS?token=(redacted) is plain http (use https)");
  for (const auto& im : pl.images) {
    CHECK(im.source.find("pw") == std::string::npos);
    CHECK(im.source.find("t0p") == std::string::npos);
  }
}

TEST_CASE("a slow host times out with its name", "[planner][hosts]") {
  auto cfg = config(kThreeHosts);
  ThreeHosts p;
  p.delays["hv3"] = std::chrono::milliseconds(5000);
  auto start = std::chrono::steady_clock::now();
  auto r = plan(cfg, p);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  CHECK(errors_of(r).find("host hv3 (test:///hv3): timed out after 500ms") != std::string::npos);
}

TEST_CASE("targets limit the plan to a resource and what it depends on", "[planner][target]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 2, image: deb}\n");
  ThreeHosts p;
  PlanOptions t;
  t.targets = {"vm.web-1"};
  const Plan pl = ok(plan(cfg, p, t));
  CHECK(find(pl, "vm.web-1"));
  CHECK(find(pl, "volume.web-1/root"));
  CHECK(find(pl, "network.front"));
  CHECK_FALSE(find(pl, "vm.web-0"));
  t.targets = {"vm.web-7"};
  CHECK(errors_of(plan(cfg, p, t)) ==
        "kumo: error: --target vm.web-7: no such resource in kumo.yaml (did you mean "
        "\"vm.web-0\"?)\n");
}

TEST_CASE("a VM group's address targets every instance of it", "[planner][target]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 3, image: deb}\n  db: {image: deb}\n");
  ThreeHosts p;
  PlanOptions t;
  t.targets = {"vm.web"};
  Plan pl = ok(plan(cfg, p, t));
  for (const char* a : {"vm.web-0", "vm.web-1", "vm.web-2", "volume.web-2/root"})
    CHECK(find(pl, a));
  CHECK_FALSE(find(pl, "vm.db"));
  CHECK(pl.targets == std::vector<std::string>{"vm.web"});  // shown as it was asked for
  t.targets = {"vm.db"};  // a VM without count: its group and its instance are one address
  pl = ok(plan(cfg, p, t));
  CHECK(find(pl, "vm.db"));
  CHECK_FALSE(find(pl, "vm.web-0"));
  t.targets = {"vm.webs"};
  CHECK(errors_of(plan(cfg, p, t)) ==
        "kumo: error: --target vm.webs: no such resource in kumo.yaml (did you mean "
        "\"vm.web\"?)\n");
  PlanOptions r;
  r.replace = {"vm.web"};
  CHECK(errors_of(plan(cfg, p, r)).empty());
}

TEST_CASE("a VM group's address also names the instances a lowered count leaves on a host",
          "[planner][target]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 2, image: deb}\n");
  const DesiredCluster desired = expand(cfg);
  ObservedHost hv1;
  hv1.host = "hv1";
  ObservedDomain leftover;
  leftover.name = "web-2";
  leftover.owner = Ownership{"fest", "vm.web-2", "", VmRecord{}};
  leftover.owner->spec->group = "web";
  ObservedDomain foreign = leftover;  // another cluster's web-5
  foreign.owner->cluster = "other";
  foreign.owner->address = "vm.web-5";
  hv1.domains = {leftover, foreign};
  CHECK(expand_vm_groups({"vm.web", "network.front", "vm.web-1"}, desired, {hv1}) ==
        std::vector<std::string>{"vm.web-0", "vm.web-1", "vm.web-2", "network.front"});
  CHECK(expand_vm_groups({"vm.nothing"}, desired, {hv1}) == std::vector<std::string>{"vm.nothing"});
}

TEST_CASE("leftover volumes from an interrupted apply are recognised", "[planner][ownership]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {image: deb, host: hv1, disks: {d: 1GiB}}\n");
  ThreeHosts p;
  p.add_volume("hv1", "kumo_fest_web_root.qcow2", 2ull << 30);
  p.add_volume("hv1", "kumo_fest_web_data-d.qcow2", 1ull << 30);
  p.add_volume("hv2", "kumo_fest_gone_seed.iso", 1 << 20);
  const Plan pl = ok(plan(cfg, p));
  CHECK(find(pl, "vm.web")->action == Action::Create);
  CHECK(find(pl, "volume.web/root")->action == Action::Replace);  // made anew from the image
  CHECK_FALSE(find(pl, "volume.web/data/d"));                     // kept: it holds data
  CHECK(find(pl, "volume.gone/seed", "hv2")->action == Action::Delete);
}

TEST_CASE("a new instance is not placed where a domain kumo did not make holds its name",
          "[planner][placement]") {
  auto cfg = config(kThreeHosts + "vms:\n  web: {image: deb}\n");
  ThreeHosts p;
  p.add_domain("hv1", "web");
  auto r = plan(cfg, p);
  ok(r);
  CHECK(r.desired.vms[0].host == "hv2");
}

TEST_CASE("a VM placed elsewhere than it would go says why in the plan", "[planner]") {
  ThreeHosts p;
  p.add_domain("hv2", "web-1", std::nullopt, 0);  // someone's domain holds the name on hv2
  auto cfg = config(kThreeHosts + "vms:\n  web: {count: 3, image: deb}\n");
  const Plan pl = ok(plan(cfg, p));
  bool seen = false;
  for (const auto& c : pl.changes) {
    if (c.address.str() != "vm.web-1") continue;
    seen = true;
    CHECK(c.host == "hv3");
    CHECK(c.reason ==
          "placed on hv3, not hv2 (a domain named \"web-1\" that kumo did not make is there)");
  }
  CHECK(seen);
}
