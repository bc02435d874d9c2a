// kumo ssh / inventory / status: finding a VM, its addresses by network, the route in (direct,
// through the host's qemu+ssh URI, through ssh_jump, or none), and the ssh command line.
#include "planner/access.h"

#include <catch2/catch.hpp>

#include "planner/inventory.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;

namespace {

std::string cluster(const std::string& hosts, const std::string& extra = "") {
  return R"(
cluster: fest
hosts:
)" + hosts +
         R"(
images:
  deb: {path: /srv/deb.qcow2}
networks:
  front: {cidr: 10.20.0.0/24}
  lan: {mode: bridge, bridge: br0}
)" + extra +
         R"(
vms:
  app:
    count: 2
    image: deb
    networks: [{network: front, ip: 10.20.0.10}]
    cloud_init:
      users: [default, {name: admin}, {name: other}]
  solo:
    image: deb
    networks: [front]
)";
}

const std::string kSshHosts =
    R"(  hv1: {uri: "qemu+ssh://root@hv1.example:2222/system?keyfile=/keys/hv1&no_verify=0"}
  hv2: {uri: "qemu+unix:///system?socket=/run/hv2.sock"})";

ObservedDomain domain(const DesiredVm& vm, bool active = true, std::string uuid = "u-1") {
  ObservedDomain d;
  d.name = vm.instance;
  d.uuid = std::move(uuid);
  d.active = active;
  d.state = active ? "running" : "shutoff";
  d.owner = Ownership{"fest", vm.address(), vm.spec_hash(), vm.spec(), true};
  return d;
}

std::vector<ObservedHost> hosts_with(const DesiredCluster& desired, const std::string& host,
                                     std::vector<ObservedDomain> domains) {
  std::vector<ObservedHost> out;
  for (const auto& h : desired.hosts) {
    ObservedHost o;
    o.host = h.name;
    o.uri = h.uri;
    o.reachable = true;
    if (h.name == host) o.domains = domains;
    out.push_back(o);
  }
  return out;
}

const DesiredVm& vm_of(const DesiredCluster& d, const std::string& name) {
  return desired_vm(d, name);
}

}  // namespace

TEST_CASE("jump_from_uri takes user, host, port and key from ssh URIs only", "[unit][access]") {
  auto j = jump_from_uri("hv1", "qemu+ssh://root@hv1.example:2222/system?keyfile=/k%20x/id&x=1");
  REQUIRE(j);
  CHECK(j->spec() == "root@hv1.example:2222");
  CHECK(j->host == "hv1.example");
  CHECK(j->user == "root");
  CHECK(j->port == 2222);
  CHECK(j->identity_file == "/k x/id");
  CHECK(j->verify);
  j = jump_from_uri("hv1", "qemu+libssh://u@[fd00::5]/system?known_hosts=/kh&no_verify=1");
  REQUIRE(j);
  CHECK(j->host == "fd00::5");
  CHECK(j->spec() == "u@[fd00::5]");
  CHECK(j->known_hosts == "/kh");
  CHECK_FALSE(j->verify);
  CHECK_FALSE(jump_from_uri("hv1", "qemu+unix:///system?socket=/x"));
  CHECK_FALSE(jump_from_uri("hv1", "qemu:///system"));
  CHECK_FALSE(jump_from_uri("hv1", "qemu+tls://hv1/system"));
  CHECK(local_uri("qemu+unix:///system?socket=/x"));
  CHECK_FALSE(local_uri("qemu+tls://hv1/system"));
}

TEST_CASE("ssh: the user comes from ssh.user, else cloud-init's first named user, else root",
          "[unit][access]") {
  auto d = expand(config(cluster(kSshHosts)));
  CHECK(vm_of(d, "app-0").ssh_user == "admin");  // "default" is skipped: it names no one
  CHECK(vm_of(d, "solo").ssh_user == "root");
  CHECK(vm_of(d, "solo").ssh_identity_file.empty());
  d = expand(config(cluster(kSshHosts, "ssh: {user: ops, identity_file: keys/ops}\n")));
  CHECK(vm_of(d, "app-1").ssh_user == "ops");
  CHECK(vm_of(d, "app-1").ssh_identity_file == "/tmp/keys/ops");
}

TEST_CASE("locate_vm: unknown names, VMs on no host, VMs on two hosts", "[unit][access]") {
  const auto d = expand(config(cluster(kSshHosts)));
  auto observed = hosts_with(d, "hv1", {domain(vm_of(d, "app-0"))});
  CHECK_THROWS_WITH(
      locate_vm(d, observed, "app-9"),
      Catch::Contains("no VM named \"app-9\" in kumo.yaml") && Catch::Contains("did you mean"));
  const auto found = locate_vm(d, observed, "vm.app-0");
  CHECK(observed[found.host].host == "hv1");
  CHECK(found.domain->name == "app-0");
  CHECK_THROWS_WITH(locate_vm(d, observed, "app-1"),
                    Catch::Contains("vm.app-1 is in kumo.yaml but on no host yet") &&
                        Catch::Contains("kumo apply"));
  observed[1].reachable = false;
  observed[1].error = "host hv2 (qemu+unix:///system): connection refused";
  CHECK_THROWS_WITH(locate_vm(d, observed, "app-1"), Catch::Contains("connection refused"));
  observed[1].reachable = true;
  observed[1].domains = {domain(vm_of(d, "app-0"))};
  CHECK_THROWS_WITH(locate_vm(d, observed, "app-0"), Catch::Contains("on hv1 and hv2 at once"));
  // A domain of the same name that is not this cluster's is not the VM.
  auto other = domain(vm_of(d, "app-1"));
  other.owner->cluster = "other";
  observed = hosts_with(d, "hv1", {other});
  CHECK_THROWS_WITH(locate_vm(d, observed, "app-1"), Catch::Contains("on no host"));
}

TEST_CASE("network_addresses: live by MAC first, then static, guest values are checked",
          "[unit][access]") {
  const auto d = expand(config(cluster(kSshHosts)));
  const auto& vm = vm_of(d, "app-1");
  const auto dom = domain(vm);
  const std::string mac = vm.nics[0].mac;
  auto a = network_addresses(dom, &vm, {});
  REQUIRE(a.size() == 1);
  CHECK(a[0].network == "front");
  CHECK(a[0].ip == "10.20.0.11");
  CHECK(a[0].source == "static");
  a = network_addresses(dom, &vm,
                        {{mac, "fe80::1", "agent"},
                         {mac, "-oProxyCommand=touch /tmp/x", "agent"},
                         {mac, "2001:db8::7", "agent"},
                         {"52:54:00:00:00:99", "10.9.9.9", "agent"},
                         {mac, "10.20.0.99", "agent"}});
  CHECK(a[0].ip == "10.20.0.99");  // IPv4 before IPv6; link-local and garbage never
  CHECK(a[0].source == "agent");
  a = network_addresses(dom, &vm, {{mac, "-oProxyCommand=x", "agent"}, {mac, "fe80::1", "agent"}});
  CHECK(a[0].ip == "10.20.0.11");
  const auto solo = domain(vm_of(d, "solo"));
  a = network_addresses(solo, &vm_of(d, "solo"), {});
  REQUIRE(a.size() == 1);
  CHECK(a[0].ip.empty());  // DHCP, nothing known yet
}

TEST_CASE("ssh_target: the route in", "[unit][access]") {
  SECTION("a NAT network inside a qemu+ssh host: through the host, as its URI says") {
    const auto d = expand(config(cluster(kSshHosts)));
    const auto observed = hosts_with(d, "hv1", {domain(vm_of(d, "app-0"))});
    const auto loc = locate_vm(d, observed, "app-0");
    const auto t = ssh_target(d, observed, loc, network_addresses(*loc.domain, loc.vm, {}), {});
    CHECK(t.address == "10.20.0.10");
    CHECK(t.user == "admin");
    REQUIRE(t.jump);
    CHECK(t.jump->spec() == "root@hv1.example:2222");
    CHECK(t.host_key_alias == "app-0.fest.kumo");
    const auto argv = ssh_argv(t, {"/s/ssh_config", "/s/known_hosts"}, {"hostname", "-f"});
    CHECK(argv == std::vector<std::string>{
                      "ssh", "-F", "/s/ssh_config", "-o", "UserKnownHostsFile=/s/known_hosts", "-o",
                      "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=app-0.fest.kumo", "-o",
                      "CheckHostIP=no", "-o", "ProxyJump=root@hv1.example:2222", "-l", "admin",
                      "10.20.0.10", "--", "hostname", "-f"});
  }
  SECTION("a unix-socket host whose network this machine does not route: a clear error") {
    const auto d = expand(config(cluster(kSshHosts)));
    const auto observed = hosts_with(d, "hv2", {domain(vm_of(d, "app-0"))});
    const auto loc = locate_vm(d, observed, "app-0");
    const auto addrs = network_addresses(*loc.domain, loc.vm, {});
    CHECK_THROWS_WITH(ssh_target(d, observed, loc, addrs, {}),
                      Catch::Contains("no ssh route in") &&
                          Catch::Contains("Set hosts.hv2.ssh_jump") &&
                          Catch::Contains("kumo.yaml:"));
    // ... unless this machine routes it (a local libvirtd's NAT bridge): then straight there.
    const auto routes = ssh::parse_proc_net_route(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "virbr0\t0000140A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
    const auto t = ssh_target(d, observed, loc, addrs, routes);
    CHECK(t.address == "10.20.0.10");
    CHECK_FALSE(t.jump);
  }
  SECTION("ssh_jump overrides the URI; ssh_jump: direct goes straight") {
    const auto d = expand(config(cluster(R"(  hv1:
    uri: "qemu+unix:///system?socket=/run/hv1.sock"
    ssh_jump: {host: 169.254.1.2, user: ops, port: 2200, identity_file: /k/ops}
  hv2:
    uri: "qemu+ssh://root@hv2/system"
    ssh_jump: direct)")));
    auto observed = hosts_with(d, "hv1", {domain(vm_of(d, "app-0"))});
    auto loc = locate_vm(d, observed, "app-0");
    auto t = ssh_target(d, observed, loc, network_addresses(*loc.domain, loc.vm, {}), {});
    REQUIRE(t.jump);
    CHECK(t.jump->host == "169.254.1.2");
    CHECK(t.jump->from == "hosts.hv1.ssh_jump");
    observed = hosts_with(d, "hv2", {domain(vm_of(d, "app-0"))});
    loc = locate_vm(d, observed, "app-0");
    t = ssh_target(d, observed, loc, network_addresses(*loc.domain, loc.vm, {}), {});
    CHECK_FALSE(t.jump);
    const auto config_text = ssh_config_text("fest", cluster_jumps(d));
    CHECK(t.jump->spec() == "ops@169.254.1.2:2200");
    CHECK(config_text.find("Host 169.254.1.2\n    IdentityFile \"/k/ops\"\n") != std::string::npos);
    CHECK(config_text.find("Host hv2") == std::string::npos);
    CHECK(config_text.find("Match all\nInclude ~/.ssh/config\n") != std::string::npos);
  }
  SECTION("not running, no address yet") {
    const auto d = expand(config(cluster(kSshHosts)));
    auto observed = hosts_with(d, "hv1", {domain(vm_of(d, "app-0"), false)});
    auto loc = locate_vm(d, observed, "app-0");
    CHECK_THROWS_WITH(
        ssh_target(d, observed, loc, {}, {}),
        Catch::Contains("vm.app-0 on hv1 is shutoff") && Catch::Contains("kumo apply"));
    observed = hosts_with(d, "hv1", {domain(vm_of(d, "solo"))});
    loc = locate_vm(d, observed, "solo");
    CHECK_THROWS_WITH(
        ssh_target(d, observed, loc, network_addresses(*loc.domain, loc.vm, {}), {}),
        Catch::Contains("vm.solo has no address yet on front") && Catch::Contains("kumo status"));
  }
}

TEST_CASE("a jump host with characters ssh_config cannot hold is refused", "[unit][access]") {
  SshJump j;
  j.host = "hv1";
  j.identity_file = "/a\"b";
  j.from = "hv1's uri";
  CHECK_THROWS_WITH(ssh_config_text("fest", {j}), Catch::Contains("hv1's uri"));
}

TEST_CASE("inventory: groups per entry, host and network, hostvars as kumo ssh", "[unit][access]") {
  const auto d = expand(config(cluster(kSshHosts)));
  const auto observed = hosts_with(
      d, "hv1", {domain(vm_of(d, "app-0")), domain(vm_of(d, "app-1")), domain(vm_of(d, "solo"))});
  std::vector<VmReach> reached;
  for (const char* name : {"app-0", "app-1", "solo"}) {
    const auto loc = locate_vm(d, observed, name);
    VmReach r;
    r.vm = name;
    r.host = "hv1";
    r.addresses = network_addresses(*loc.domain, loc.vm, {});
    try {
      r.target = ssh_target(d, observed, loc, r.addresses, {});
    } catch (const AccessError& e) {
      r.error = e.what();
    }
    reached.push_back(r);
  }
  const auto inv = build_inventory(d, reached, {"/s/cfg", "/s/kh"});
  CHECK(inv.hosts.size() == 2);
  REQUIRE(inv.left_out.size() == 1);
  CHECK(inv.left_out[0].rfind("vm.solo: ", 0) == 0);
  CHECK(inv.groups.at("app") == std::vector<std::string>{"app-0", "app-1"});
  CHECK(inv.groups.at("host_hv1") == std::vector<std::string>{"app-0", "app-1"});
  CHECK(inv.groups.at("net_front") == std::vector<std::string>{"app-0", "app-1"});
  const auto& vars = inv.hosts.at("app-1");
  CHECK(vars["ansible_host"] == "10.20.0.11");
  CHECK(vars["ansible_user"] == "admin");
  CHECK(vars["ansible_ssh_common_args"] ==
        "-F /s/cfg -o UserKnownHostsFile=/s/kh -o StrictHostKeyChecking=yes -o "
        "HostKeyAlias=app-1.fest.kumo -o CheckHostIP=no -o ProxyJump=root@hv1.example:2222");
  const auto list = inventory_list(inv);
  CHECK(list["_meta"]["hostvars"]["app-0"]["kumo_address"] == "vm.app-0");
  CHECK(list["app"]["hosts"].size() == 2);
  CHECK(inventory_document(inv)["all"]["children"]["host_hv1"]["hosts"].contains("app-0"));
  CHECK(ansible_group_name("web-tier") == "web_tier");
  CHECK(ansible_group_name("3d") == "_3d");
}
