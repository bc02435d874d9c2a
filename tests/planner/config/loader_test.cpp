#include "planner/config/loader.h"
#include "planner/desired.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace kumo;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("kumo-loader-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name) << text;
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

LoadResult load(const std::string& text, LoadOptions options = {},
                const std::string& base = "/tmp") {
  if (!options.environment.count("HOME")) options.environment["HOME"] = "/home/festival";
  return load_config_text(text, "kumo.yaml", base, options);
}

std::string errors_of(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics.sorted()) out += format_diagnostic(d) + "\n";
  return out;
}

const ClusterConfig& ok(const LoadResult& r) {
  INFO(errors_of(r));
  REQUIRE(r.config.has_value());
  return *r.config;
}

const char* kBase = R"(
cluster: c1
images:
  deb: {path: /srv/deb.qcow2}
networks:
  front: {cidr: 10.1.0.0/24}
)";

}  // namespace

TEST_CASE("without hosts: one local host at LIBVIRT_DEFAULT_URI, else qemu:///system", "[loader]") {
  auto cfg = ok(load(kBase));
  REQUIRE(cfg.hosts.size() == 1);
  CHECK(cfg.hosts[0].name == "local");
  CHECK(cfg.hosts[0].uri == "qemu:///system");
  CHECK(cfg.hosts_implicit);

  LoadOptions opts;
  opts.environment["LIBVIRT_DEFAULT_URI"] = "test:///default";
  auto cfg2 = ok(load(kBase, opts));
  CHECK(cfg2.hosts[0].uri == "test:///default");
  // Networks default to every host.
  CHECK(cfg2.networks[0].hosts == std::vector<std::string>{"local"});
}

TEST_CASE("VM fields get documented defaults", "[loader]") {
  auto cfg = ok(load(std::string(kBase) + "vms:\n  web: {image: deb}\n"));
  const auto& vm = cfg.vms.at(0);
  CHECK(vm.cpus == 1);
  CHECK(vm.memory == 512 * kMiB);
  CHECK_FALSE(vm.disk.has_value());
  CHECK(vm.running);
  CHECK(vm.autostart);
  CHECK(vm.wait_for == WaitFor::CloudInit);
  CHECK(vm.wait_timeout == std::chrono::seconds(600));
  CHECK(vm.lifecycle.on_user_data_change == UserDataChange::Recreate);
  // The only network is attached when a VM names none.
  REQUIRE(vm.networks.size() == 1);
  CHECK(vm.networks[0].network == "front");
  CHECK(vm.instance_names() == std::vector<std::string>{"web"});
}

TEST_CASE("count expands instances and steps static addresses", "[loader]") {
  auto cfg = ok(load(std::string(kBase) + R"(vms:
  web:
    count: 3
    image: deb
    networks: [{network: front, ip: 10.1.0.10, mac: "52:54:00:00:00:fe"}]
)"));
  const auto& vm = cfg.vms.at(0);
  CHECK(vm.instance_names() == std::vector<std::string>{"web-0", "web-1", "web-2"});
  CHECK(vm.networks[0].ip->str() == "10.1.0.10");
  CHECK(vm.networks[0].mac->plus(2).str() == "52:54:00:00:01:00");
}

TEST_CASE("defaults apply field by field, cloud_init key by key", "[loader]") {
  auto cfg = ok(load(std::string(kBase) + R"(hosts:
  local: {uri: "test:///default"}
  other: {uri: "test:///default"}
defaults:
  image: deb
  memory: 1GiB
  placement: {strategy: pack, anti_affinity: g}
  cloud_init:
    packages: [htop]
    runcmd: [[echo, default]]
vms:
  a: {}
  b:
    memory: 2GiB
    cloud_init:
      runcmd: [[echo, b]]
  c:
    host: local
)"));
  const auto& a = *cfg.find_vm("a");
  const auto& b = *cfg.find_vm("b");
  const auto& c = *cfg.find_vm("c");
  CHECK(a.memory == kGiB);
  CHECK(b.memory == 2 * kGiB);
  CHECK(a.image == "deb");
  CHECK(b.cloud_init.packages == std::vector<std::string>{"htop"});
  CHECK(b.cloud_init.runcmd == nlohmann::json::parse(R"([["echo","b"]])"));
  CHECK(a.cloud_init.runcmd == nlohmann::json::parse(R"([["echo","default"]])"));
  CHECK(a.placement == PlacementStrategy::Pack);
  CHECK(a.anti_affinity == "g");
  // A pinned VM does not inherit placement.
  CHECK(c.host == "local");
  CHECK_FALSE(c.anti_affinity.has_value());
}

TEST_CASE("variables: default < KUMO_VAR_ env < --var-file < -var", "[loader][variables]") {
  TempDir dir;
  dir.write("a.vars.yaml", "mem: 3GiB\n");
  dir.write("b.vars.yaml", "mem: 4GiB\ncpus: 3\n");
  const std::string text = std::string(kBase) + R"(variables:
  mem: {default: 1GiB}
  cpus: {default: 1}
  name: {default: web}
vms:
  ${var.name}x: {image: deb}
  web:
    image: deb
    memory: ${var.mem}
    cpus: ${var.cpus}
)";
  // Map keys are names, not expressions: "${var.name}x" is rejected as a name.
  auto bad = load(text);
  CHECK(errors_of(bad).find("vm \"${var.name}x\": name \"${var.name}x\" is not valid") !=
        std::string::npos);

  const std::string good = std::string(kBase) + R"(variables:
  mem: {default: 1GiB}
  cpus: {default: 1}
vms:
  web:
    image: deb
    memory: ${var.mem}
    cpus: ${var.cpus}
)";
  CHECK(ok(load(good)).vms[0].memory == kGiB);
  LoadOptions opts;
  opts.environment["KUMO_VAR_mem"] = "2GiB";
  CHECK(ok(load(good, opts)).vms[0].memory == 2 * kGiB);
  opts.var_files = {(dir.path / "a.vars.yaml").string(), (dir.path / "b.vars.yaml").string()};
  CHECK(ok(load(good, opts)).vms[0].memory == 4 * kGiB);
  CHECK(ok(load(good, opts)).vms[0].cpus == 3);
  opts.vars = {{"mem", "5GiB"}};
  CHECK(ok(load(good, opts)).vms[0].memory == 5 * kGiB);
}

TEST_CASE("variable errors name the variable and say how to set it", "[loader][variables]") {
  const std::string text = std::string(kBase) + R"(variables:
  secret: {sensitive: true}
vms:
  web:
    image: deb
    cloud_init:
      write_files: [{path: /etc/x, content: "${var.secret}"}]
      runcmd: ["echo ${var.secrte}"]
)";
  auto r = load(text);
  CHECK(errors_of(r) ==
        "kumo.yaml:13:45: error: vm \"web\": cloud_init: write_files: variable \"secret\" has no "
        "value: set it "
        "with -var secret=VALUE, --var-file FILE or KUMO_VAR_secret, or give it a default\n"
        "kumo.yaml:14:16: error: vm \"web\": cloud_init: runcmd: undefined variable \"secrte\" "
        "(did you mean "
        "\"secret\"?); declare it under variables:\n");

  LoadOptions opts;
  opts.vars = {{"secret", "hunter2"}, {"nope", "1"}};
  auto r2 = load(text, opts);
  CHECK(errors_of(r2).find(
            "kumo: error: -var nope=...: no variable \"nope\" is declared in kumo.yaml\n") == 0);
}

TEST_CASE("fields that use a sensitive variable are marked on their object",
          "[loader][variables]") {
  const std::string text = std::string(kBase) + R"(variables:
  secret: {sensitive: true, default: hunter2}
  mem: {sensitive: true, default: 1GiB}
  one: {sensitive: true, default: "1"}
  plain: {default: visible}
defaults:
  cpus: ${var.one}
vms:
  web:
    image: deb
    memory: ${var.mem}
    cloud_init:
      write_files: [{path: /etc/x, content: "${var.secret} ${var.plain}"}]
  api:
    image: deb
    cpus: 2
    disks: {data: "${var.one}GiB"}
    networks: [{network: front, ip: "10.1.0.${var.one}0"}]
)";
  auto cfg = ok(load(text));
  const auto& web = *cfg.find_vm("web");
  CHECK(web.cloud_init.write_files[0]["content"] == "hunter2 visible");
  CHECK(web.memory == kGiB);
  CHECK(web.sensitive.fields == std::set<std::string>{"cloud_init", "cpus", "memory"});
  const auto& api = *cfg.find_vm("api");
  CHECK(api.cpus == 2);
  CHECK_FALSE(api.sensitive.has("cpus"));  // its own cpus replaced the sensitive default
  CHECK(api.sensitive.has("disks"));
  CHECK(api.sensitive.has("networks"));
  CHECK_FALSE(api.sensitive.has("memory"));
  CHECK_FALSE(api.sensitive.has("image"));
}

TEST_CASE("cloud_init is also read with sensitive values masked, value by value",
          "[loader][variables][cloud-init]") {
  const std::string text = std::string(kBase) + R"(variables:
  secret: {sensitive: true, default: hunter2}
  plain: {default: visible}
defaults:
  cloud_init:
    write_files: [{path: /etc/x, content: "token=${var.secret} ${var.plain}"}]
vms:
  web:
    image: deb
    cloud_init:
      packages: [nginx]
      user_data: |
        #cloud-config
        chpasswd: {users: [{name: app, password: "${var.secret}"}]}
  api:
    image: deb
    cloud_init: {packages: [curl]}
)";
  auto cfg = ok(load(text));
  const auto& web = *cfg.find_vm("web");
  CHECK(web.cloud_init.write_files[0]["content"] == "token=hunter2 visible");
  CHECK(web.cloud_init_shown.write_files[0]["content"] == "token=(sensitive) visible");
  CHECK(web.cloud_init_shown.packages == std::vector<std::string>{"nginx"});
  CHECK(web.cloud_init.user_data->find("password: \"hunter2\"") != std::string::npos);
  CHECK(web.cloud_init_shown.user_data->find("password: \"(sensitive)\"") != std::string::npos);
  // The defaults' sensitive write_files stay with the VM that only adds packages: so does the mark.
  const auto& api = *cfg.find_vm("api");
  CHECK(api.sensitive.has("cloud_init"));
  CHECK(api.cloud_init_shown.write_files[0]["content"] == "token=(sensitive) visible");
  const DesiredCluster d = expand(cfg);
  for (const auto& vm : d.vms) {
    CHECK(vm.user_data.find("hunter2") != std::string::npos);
    CHECK(vm.user_data_shown.find("hunter2") == std::string::npos);
    CHECK(vm.user_data_shown.find("token=(sensitive) visible") != std::string::npos);
  }
}

TEST_CASE("${file()} reads relative to the config, ~ is HOME, $${ escapes, shell ${X} stays",
          "[loader]") {
  TempDir dir;
  dir.write("keys/admin.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE admin@x\n");
  dir.write("home/.ssh/id.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF me@x\n");
  LoadOptions opts;
  opts.environment["HOME"] = (dir.path / "home").string();
  auto cfg = ok(load(std::string(kBase) + R"(vms:
  web:
    image: deb
    cloud_init:
      ssh_authorized_keys: ["${file(keys/admin.pub)}", "${file(~/.ssh/id.pub)}"]
      runcmd: ["echo $${var.literal} ${HOME} $PATH"]
)",
                     opts, dir.path.string()));
  const auto& ci = cfg.vms[0].cloud_init;
  CHECK(ci.ssh_authorized_keys ==
        std::vector<std::string>{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE admin@x",
                                 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF me@x"});
  CHECK(ci.runcmd[0] == "echo ${var.literal} ${HOME} $PATH");
}

TEST_CASE("user_data_file is read whole and its YAML errors point into it",
          "[loader][cloud-init]") {
  TempDir dir;
  dir.write("ud.yaml", "#cloud-config\ntimezone: UTC\n");
  dir.write("broken.yaml", "#cloud-config\nruncmd: [a,\n");
  const std::string head = std::string(kBase) + "vms:\n  web:\n    image: deb\n    cloud_init:\n";
  auto cfg = ok(load(head + "      user_data_file: ud.yaml\n      packages: [nginx]\n", {},
                     dir.path.string()));
  CHECK(*cfg.vms[0].cloud_init.user_data == "#cloud-config\ntimezone: UTC\n");
  CHECK(*cfg.vms[0].cloud_init.user_data_file == (dir.path / "ud.yaml").string());

  auto r = load(head + "      user_data_file: broken.yaml\n", {}, dir.path.string());
  CHECK(errors_of(r) ==
        (dir.path / "broken.yaml").string() +
            ":3:1: error: YAML syntax error in cloud-config: end of sequence flow not found\n");
}

TEST_CASE("cloud-init structures keep YAML types: quoted stays text, 0644 stays text",
          "[loader][cloud-init]") {
  auto cfg = ok(load(std::string(kBase) + R"(vms:
  web:
    image: deb
    cloud_init:
      write_files:
        - {path: /a, permissions: 0644, append: true, content: "true"}
      users:
        - default
        - {name: admin, lock_passwd: false, uid: 1500}
)"));
  const auto& ci = cfg.vms[0].cloud_init;
  CHECK(ci.write_files[0]["permissions"] == "0644");
  CHECK(ci.write_files[0]["append"] == true);
  CHECK(ci.write_files[0]["content"] == "true");
  CHECK(ci.users[1]["lock_passwd"] == false);
  CHECK(ci.users[1]["uid"] == 1500);
}

TEST_CASE("networks: default DHCP range is the upper half, hosts narrows placement",
          "[loader][network]") {
  auto cfg = ok(load(R"(
cluster: c1
hosts:
  hv1: {uri: "test:///default"}
  hv2: {uri: "test:///default"}
networks:
  a: {cidr: 10.1.0.0/24, hosts: [hv1]}
  b: {cidr: 10.1.0.0/24, hosts: [hv2], dhcp: {range: 10.1.0.50-10.1.0.60}}
  c: {cidr: 10.2.0.0/24, dhcp: false, mode: isolated}
)"));
  const auto& a = *cfg.find_network("a");
  CHECK(a.effective_dhcp_range()->start.str() == "10.1.0.128");
  CHECK(a.effective_dhcp_range()->end.str() == "10.1.0.254");
  CHECK(a.gateway().str() == "10.1.0.1");
  CHECK(cfg.find_network("b")->effective_dhcp_range()->start.str() == "10.1.0.50");
  CHECK_FALSE(cfg.find_network("c")->effective_dhcp_range().has_value());
  // a and b overlap but never share a host, so both are fine.
  CHECK(a.hosts == std::vector<std::string>{"hv1"});
}

TEST_CASE("all errors are reported in one pass", "[loader]") {
  auto r = load(R"(
cluster: c1
images:
  deb: {path: /srv/deb.qcow2}
vms:
  a: {image: deb, memory: 12}
  b: {image: debx, cpus: many}
  c: {image: deb, colour: blue}
)");
  CHECK(r.diagnostics.error_count() == 4);
  CHECK_FALSE(r.config.has_value());
}

TEST_CASE("a missing cluster file says what to do", "[loader]") {
  auto r = load_config("/nonexistent/kumo.yaml", {});
  CHECK(errors_of(r) ==
        "/nonexistent/kumo.yaml: error: cannot read the cluster file: No such file or directory "
        "(use -f FILE "
        "to name another)\n");
}

TEST_CASE("inputs the fuzzer found once load quickly without internal errors", "[loader][fuzz]") {
  const fs::path dir = fs::path(KUMO_SOURCE_DIR) / "tests/data/fuzz-regressions";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    INFO(e.path().filename().string());
    auto r = load(ss.str());
    for (const auto& d : r.diagnostics.all()) CHECK(d.message.rfind(kInternalErrorPrefix, 0) != 0);
    CHECK(r.config.has_value() != r.diagnostics.has_errors());
    ++n;
  }
  CHECK(n >= 5);
}
