// place(observed, desired) on its own: hosts written out by hand with their CPUs, memory and
// domains; the instances of a kumo.yaml get their hosts, or errors and `unknown` say why not.
#include "planner/placement.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;
constexpr std::uint64_t MiB = 1ull << 20;

// Three hosts, one network on all of them, and the vms: block that follows.
std::string cluster(const std::string& vms, const std::string& hosts = R"(
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
  hv3: {uri: "test:///hv3"}
)",
                    const std::string& networks = "  front: {cidr: 10.20.0.0/24}\n") {
  return "cluster: fest\nhosts:" + hosts + R"(images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
         std::string(64, 'a') + "\"}\nnetworks:\n" + networks + "vms:\n" + vms;
}

DesiredCluster desired(const std::string& text) {
  return expand(config(text));
}

ObservedHost host(const std::string& name, int cpus = 8, std::uint64_t memory = 32 * GiB) {
  ObservedHost h;
  h.host = name;
  h.uri = "test:///" + name;
  h.reachable = true;
  h.facts = test::host_facts(name, cpus, memory, true);
  return h;
}

std::vector<ObservedHost> three_hosts() {
  return {host("hv1"), host("hv2"), host("hv3")};
}

ObservedHost& on(std::vector<ObservedHost>& hosts, const std::string& name) {
  for (auto& h : hosts)
    if (h.host == name) return h;
  FAIL("no host " << name);
  throw std::logic_error("unreachable");
}

// A domain kumo did not make (or another cluster did, when `owner` is set).
void foreign(ObservedHost& h, const std::string& name, std::uint64_t memory, int vcpus = 1,
             std::optional<Ownership> owner = {}) {
  ObservedDomain d;
  d.name = name;
  d.active = true;
  d.state = "running";
  d.memory = d.max_memory = memory;
  d.vcpus = d.max_vcpus = vcpus;
  d.owner = std::move(owner);
  h.domains.push_back(d);
}

// An instance of cluster fest that exists on `h`.
void existing(ObservedHost& h, const std::string& instance, std::uint64_t memory = 512 * MiB,
              int vcpus = 1) {
  foreign(h, instance, memory, vcpus, Ownership{"fest", "vm." + instance, "", std::nullopt, true});
}

// "web-0@hv1 web-1@hv2 ...": every instance and its host ("" when it has none).
std::string placed(const DesiredCluster& d) {
  std::string out;
  for (const auto& vm : d.vms) out += (out.empty() ? "" : " ") + vm.instance + "@" + vm.host;
  return out;
}

std::vector<std::string> messages(const PlacementResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors.all()) out.push_back(e.message);
  return out;
}

// Places and requires it went without errors.
std::string place_ok(const std::vector<ObservedHost>& hosts, DesiredCluster& d) {
  const PlacementResult r = place(hosts, d);
  INFO(Catch::StringMaker<std::vector<std::string>>::convert(messages(r)));
  REQUIRE_FALSE(r.errors.has_errors());
  CHECK(r.unknown.empty());
  return placed(d);
}

const std::string kWeb3 = R"(  web:
    count: 3
    image: deb
)";

}  // namespace

TEST_CASE("spread puts new instances on the hosts with fewest of their group, then most room",
          "[placement]") {
  SECTION("equal hosts: one each, in the hosts' order") {
    auto d = desired(cluster(kWeb3));
    CHECK(place_ok(three_hosts(), d) == "web-0@hv1 web-1@hv2 web-2@hv3");
  }
  SECTION("a host busy with other domains comes last") {
    auto hosts = three_hosts();
    foreign(on(hosts, "hv1"), "mail", 8 * GiB);
    auto d = desired(cluster("  web:\n    count: 4\n    image: deb\n"));
    CHECK(place_ok(hosts, d) == "web-0@hv2 web-1@hv3 web-2@hv1 web-3@hv2");
  }
  SECTION("another group's instances do not count against spreading this one") {
    auto hosts = three_hosts();
    existing(on(hosts, "hv1"), "db", 512 * MiB);
    auto d = desired(cluster(kWeb3 + "  db:\n    image: deb\n    memory: 512MiB\n"));
    // hv1 has less free memory (db is there), so web-0 goes to hv2; db stays.
    CHECK(place_ok(hosts, d) == "web-0@hv2 web-1@hv3 web-2@hv1 db@hv1");
  }
}

TEST_CASE("pack fills the fullest host that has room before using another", "[placement]") {
  SECTION("equal hosts: all on the first") {
    auto d = desired(cluster("  web:\n    count: 3\n    image: deb\n    placement: pack\n"));
    CHECK(place_ok(three_hosts(), d) == "web-0@hv1 web-1@hv1 web-2@hv1");
  }
  SECTION("the busiest host first, then the next when it is full") {
    std::vector<ObservedHost> hosts = {host("hv1"), host("hv2", 8, GiB), host("hv3")};
    auto d = desired(cluster("  web:\n    count: 3\n    image: deb\n    placement: pack\n"));
    CHECK(place_ok(hosts, d) == "web-0@hv2 web-1@hv2 web-2@hv1");
  }
}

TEST_CASE("anti-affinity keeps a group's members on different hosts, or says why it cannot",
          "[placement]") {
  SECTION("even under pack, and across the VMs that name the group") {
    auto d = desired(cluster(R"(  web:
    count: 2
    image: deb
    placement: {strategy: pack, anti_affinity: front}
  api:
    image: deb
    placement: {strategy: pack, anti_affinity: front}
)"));
    CHECK(place_ok(three_hosts(), d) == "web-0@hv1 web-1@hv2 api@hv3");
  }
  SECTION("no host left for a member: an error naming every host's reason") {
    auto hosts = three_hosts();
    foreign(on(hosts, "hv3"), "mail", 32 * GiB);
    auto d = desired(cluster(R"(  web:
    count: 3
    image: deb
    placement: {anti_affinity: web}
)"));
    const PlacementResult r = place(hosts, d);
    CHECK(messages(r) ==
          std::vector<std::string>{
              "vm \"web-2\" (512 MiB, 1 vCPU each) fit on no host; hv1: already holds a member "
              "of anti_affinity group \"web\"; hv2: already holds a member of anti_affinity "
              "group \"web\"; hv3: not enough memory (0 B free of 32 GiB)"});
    CHECK(placed(d) == "web-0@hv1 web-1@hv2 web-2@");
    REQUIRE(r.errors.all().size() == 1);
    CHECK(r.errors.all().front().location.known());
  }
}

TEST_CASE("capacity counts memory and vCPUs with each host's overcommit", "[placement]") {
  const std::string one_host =
      "\n  hv1: {uri: \"test:///hv1\", memory_overcommit: 1.5, "
      "cpu_overcommit: 2}\n";
  const std::vector<ObservedHost> small = {host("hv1", 2, 4 * GiB)};
  SECTION("memory_overcommit 1.5 lets 6 GiB of guests onto 4 GiB") {
    auto d = desired(cluster("  big:\n    count: 3\n    image: deb\n    memory: 2GiB\n", one_host));
    CHECK(place_ok(small, d) == "big-0@hv1 big-1@hv1 big-2@hv1");
  }
  SECTION("but not more") {
    auto d = desired(cluster("  big:\n    count: 4\n    image: deb\n    memory: 2GiB\n", one_host));
    const PlacementResult r = place(small, d);
    CHECK(messages(r) == std::vector<std::string>{"vm \"big-3\" (2 GiB, 1 vCPU each) fit on no "
                                                  "host; hv1: not enough memory (0 B free of 6 "
                                                  "GiB)"});
  }
  SECTION("without overcommit 4 GiB hold two") {
    auto d = desired(cluster("  big:\n    count: 3\n    image: deb\n    memory: 2GiB\n",
                             "\n  hv1: {uri: \"test:///hv1\"}\n"));
    const PlacementResult r = place(small, d);
    CHECK(messages(r) == std::vector<std::string>{"vm \"big-2\" (2 GiB, 1 vCPU each) fit on no "
                                                  "host; hv1: not enough memory (0 B free of 4 "
                                                  "GiB)"});
    CHECK(placed(d) == "big-0@hv1 big-1@hv1 big-2@");
  }
  SECTION("cpu_overcommit 2 allows 4 vCPUs on 2 CPUs") {
    auto d = desired(cluster("  wide:\n    count: 3\n    image: deb\n    cpus: 2\n", one_host));
    const PlacementResult r = place(small, d);
    CHECK(messages(r) == std::vector<std::string>{"vm \"wide-2\" (512 MiB, 2 vCPU each) fit on no "
                                                  "host; hv1: not enough vCPUs (4 of 4 in use)"});
    CHECK(placed(d) == "wide-0@hv1 wide-1@hv1 wide-2@");
  }
  SECTION("other domains on the host use its room") {
    std::vector<ObservedHost> busy = small;
    foreign(busy.front(), "mail", 5 * GiB);
    auto d = desired(cluster("  big:\n    image: deb\n    memory: 2GiB\n", one_host));
    const PlacementResult r = place(busy, d);
    CHECK(messages(r) == std::vector<std::string>{"vm \"big\" (2 GiB, 1 vCPU each) fit on no "
                                                  "host; hv1: not enough memory (1 GiB free of "
                                                  "6 GiB)"});
  }
}

TEST_CASE("a pinned VM goes to its host whatever the strategy, and counts there", "[placement]") {
  auto d = desired(cluster(R"(  db:
    count: 2
    image: deb
    memory: 4GiB
    host: hv3
  web:
    image: deb
)"));
  // hv3 would have the most room, but db's 8 GiB are counted there: web goes elsewhere.
  auto hosts = three_hosts();
  foreign(on(hosts, "hv1"), "mail", 2 * GiB);
  foreign(on(hosts, "hv2"), "mail", 2 * GiB);
  CHECK(place_ok(hosts, d) == "db-0@hv3 db-1@hv3 web@hv1");
}

TEST_CASE("an instance that exists stays on its host", "[placement]") {
  SECTION("the others are placed around it") {
    auto hosts = three_hosts();
    existing(on(hosts, "hv3"), "web-1");
    auto d = desired(cluster(kWeb3));
    CHECK(place_ok(hosts, d) == "web-0@hv1 web-1@hv3 web-2@hv2");
  }
  SECTION("even where spread would not put it now") {
    auto hosts = three_hosts();
    existing(on(hosts, "hv1"), "web-0");
    existing(on(hosts, "hv1"), "web-1");
    auto d = desired(cluster(kWeb3));
    CHECK(place_ok(hosts, d) == "web-0@hv1 web-1@hv1 web-2@hv2");
  }
  SECTION("its memory is counted once, not as a foreign domain and again as an instance") {
    std::vector<ObservedHost> hosts = {host("hv1", 8, 1 * GiB)};
    existing(hosts.front(), "web-0");
    auto d = desired(
        cluster("  web:\n    count: 2\n    image: deb\n", "\n  hv1: {uri: \"test:///hv1\"}\n"));
    CHECK(place_ok(hosts, d) == "web-0@hv1 web-1@hv1");
  }
}

TEST_CASE("placement is deterministic: the same file and hosts give the same answer",
          "[placement]") {
  const std::string text = cluster(R"(  web:
    count: 5
    image: deb
    memory: 1GiB
  api:
    count: 4
    image: deb
    placement: pack
)");
  auto hosts = three_hosts();
  foreign(on(hosts, "hv2"), "mail", 3 * GiB);
  existing(on(hosts, "hv3"), "api-2", 512 * MiB);
  auto first = desired(text);
  const std::string answer = place_ok(hosts, first);
  for (int i = 0; i < 5; ++i) {
    auto again = desired(text);
    CHECK(place_ok(hosts, again) == answer);
  }
  // The order hosts are observed in is no input: the file's order breaks ties.
  std::vector<ObservedHost> reversed(hosts.rbegin(), hosts.rend());
  auto other = desired(text);
  CHECK(place_ok(reversed, other) == answer);
  CHECK(answer ==
        "web-0@hv1 web-1@hv3 web-2@hv2 web-3@hv1 web-4@hv3 api-0@hv2 api-1@hv2 api-2@hv3 "
        "api-3@hv2");
}

TEST_CASE("a host that lacks one of the VM's networks is never chosen", "[placement]") {
  auto d = desired(cluster(R"(  db:
    count: 2
    image: deb
    networks: [{network: back}]
  web:
    image: deb
    networks: [{network: front}, {network: back}]
)",
                           R"(
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
  hv3: {uri: "test:///hv3"}
)",
                           "  front: {cidr: 10.20.0.0/24, hosts: [hv1, hv2]}\n"
                           "  back: {cidr: 10.30.0.0/24, hosts: [hv2, hv3]}\n"));
  CHECK(place_ok(three_hosts(), d) == "db-0@hv2 db-1@hv3 web@hv2");
}

TEST_CASE("a host where a domain kumo did not make holds the VM's name is avoided", "[placement]") {
  const std::string text = cluster("  db:\n    image: deb\n");
  SECTION("the next host is taken") {
    auto hosts = three_hosts();
    foreign(on(hosts, "hv1"), "db", 0, 0);  // takes no room: only its name is in the way
    foreign(on(hosts, "hv2"), "db", 0, 0, Ownership{"other", "vm.db", "", std::nullopt, true});
    auto d = desired(text);
    CHECK(place_ok(hosts, d) == "db@hv3");
  }
  SECTION("on every host: an error") {
    auto hosts = three_hosts();
    for (auto& h : hosts) foreign(h, "db", 0, 0);
    auto d = desired(text);
    const PlacementResult r = place(hosts, d);
    CHECK(messages(r) ==
          std::vector<std::string>{"vm \"db\" (512 MiB, 1 vCPU each) fit on no host; hv1: a "
                                   "domain named \"db\" that kumo did not make is there; hv2: a "
                                   "domain named \"db\" that kumo did not make is there; hv3: a "
                                   "domain named \"db\" that kumo did not make is there"});
    CHECK(d.vms.front().host.empty());
  }
}

TEST_CASE("with a host unreachable, new instances are unknown rather than placed twice",
          "[placement]") {
  auto hosts = three_hosts();
  on(hosts, "hv2").reachable = false;
  existing(on(hosts, "hv1"), "web-0");
  auto d = desired(cluster(kWeb3 + R"(  db:
    image: deb
    host: hv3
  cache:
    image: deb
    host: hv2
)"));
  const PlacementResult r = place(hosts, d);
  CHECK_FALSE(r.errors.has_errors());
  // web-1 and web-2 may live on hv2; cache is pinned there.
  CHECK(r.unknown == std::vector<std::string>{"web-1", "web-2", "cache"});
  CHECK(placed(d) == "web-0@hv1 web-1@ web-2@ db@hv3 cache@");
  SECTION("a host missing from the observed ones counts as unreachable") {
    std::vector<ObservedHost> two = {host("hv1"), host("hv3")};
    auto d2 = desired(cluster(kWeb3));
    const PlacementResult r2 = place(two, d2);
    CHECK(r2.unknown == std::vector<std::string>{"web-0", "web-1", "web-2"});
  }
}

TEST_CASE("an instance found on two hosts is an error and is placed nowhere", "[placement]") {
  auto hosts = three_hosts();
  existing(on(hosts, "hv1"), "web-0");
  existing(on(hosts, "hv3"), "web-0");
  auto d = desired(cluster(kWeb3));
  const PlacementResult r = place(hosts, d);
  CHECK(messages(r) == std::vector<std::string>{
                           "vm.web-0 exists on more than one host (hv1 and hv3); destroy the extra "
                           "copy by hand (virsh undefine) and plan again"});
  CHECK(placed(d) == "web-0@ web-1@hv1 web-2@hv2");
}

TEST_CASE("a pinned or grown VM may not make a host over-full", "[placement]") {
  const std::string hv1 = "\n  hv1: {uri: \"test:///hv1\"}\n";
  SECTION("memory") {
    auto d = desired(cluster("  db:\n    image: deb\n    memory: 8GiB\n    host: hv1\n", hv1));
    const PlacementResult r = place({host("hv1", 8, 4 * GiB)}, d);
    CHECK(messages(r) == std::vector<std::string>{
                             "host \"hv1\" would be over-full: its VMs would need 8 GiB of memory, "
                             "it has 4 GiB (memory_overcommit 1.00)"});
    CHECK(placed(d) == "db@hv1");  // placed: the error refuses the plan
  }
  SECTION("vCPUs") {
    auto d = desired(cluster("  db:\n    image: deb\n    cpus: 10\n    host: hv1\n", hv1));
    const PlacementResult r = place({host("hv1", 2)}, d);
    CHECK(messages(r) == std::vector<std::string>{
                             "host \"hv1\" would be over-full: its VMs would need 10 vCPUs, it "
                             "allows 8 (2 CPUs, cpu_overcommit 4.00)"});
  }
  SECTION("a host that is over-full already and gets no fuller is accepted") {
    std::vector<ObservedHost> hosts = {host("hv1", 8, 4 * GiB)};
    existing(hosts.front(), "db", 8 * GiB);
    auto d = desired(cluster("  db:\n    image: deb\n    memory: 8GiB\n", hv1));
    CHECK(place_ok(hosts, d) == "db@hv1");
  }
  SECTION("an instance that grows on an over-full host is refused") {
    std::vector<ObservedHost> hosts = {host("hv1", 8, 4 * GiB)};
    existing(hosts.front(), "db", 8 * GiB);
    auto d = desired(cluster("  db:\n    image: deb\n    memory: 9GiB\n", hv1));
    const PlacementResult r = place(hosts, d);
    CHECK(messages(r) == std::vector<std::string>{
                             "host \"hv1\" would be over-full: its VMs would need 9 GiB of memory, "
                             "it has 4 GiB (memory_overcommit 1.00)"});
  }
}

TEST_CASE("instances that fit nowhere are reported once per vms: entry", "[placement]") {
  auto d = desired(cluster(R"(  big:
    count: 5
    image: deb
    memory: 64GiB
  huge:
    image: deb
    memory: 128GiB
  web:
    image: deb
)"));
  const PlacementResult r = place(three_hosts(), d);
  const std::string full =
      "; hv1: not enough memory (32 GiB free of 32 GiB); hv2: not enough "
      "memory (32 GiB free of 32 GiB); hv3: not enough memory (32 GiB free "
      "of 32 GiB)";
  CHECK(
      messages(r) ==
      std::vector<std::string>{
          "5 instances of vm \"big\" (big-0 to big-4) (64 GiB, 1 vCPU each) fit on no host" + full,
          "vm \"huge\" (128 GiB, 1 vCPU each) fit on no host" + full});
  CHECK(r.unknown.empty());
  CHECK(placed(d) == "big-0@ big-1@ big-2@ big-3@ big-4@ huge@ web@hv1");
}

TEST_CASE("an instance placed elsewhere than it would go says why", "[placement]") {
  SECTION("a domain kumo did not make holds its name on the host it would go to") {
    auto hosts = three_hosts();
    foreign(on(hosts, "hv2"), "web-1", 0);  // shut off, holding no memory: only its name counts
    auto d = desired(cluster(kWeb3));
    const PlacementResult r = place(hosts, d);
    REQUIRE_FALSE(r.errors.has_errors());
    CHECK(placed(d) == "web-0@hv1 web-1@hv3 web-2@hv2");
    REQUIRE(r.detours.count("web-1"));
    CHECK(r.detours.at("web-1") ==
          "placed on hv3, not hv2 (a domain named \"web-1\" that kumo did not make is there)");
  }
  SECTION("where every host is open to it, nothing is said") {
    auto d = desired(cluster(kWeb3));
    CHECK(place(three_hosts(), d).detours.empty());
  }
}
