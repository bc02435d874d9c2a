// Golden renderings of one plan that has every kind of change. KUMO_UPDATE_GOLDEN=1 rewrites them
// (then review the diff: it is the user-visible output).
#include "cli/views/plan_view.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "planner/config/loader.h"
#include "planner/planner.h"
#include "tests/exec_fixture.h"
#include "tests/golden.h"

using namespace kumo;

namespace {

using test::check_golden;

ClusterConfig load(const std::string& text) {
  LoadOptions opts;
  opts.environment["HOME"] = "/home/test";
  auto r = load_config_text(text, "kumo.yaml", "/tmp", opts);
  REQUIRE(r.config.has_value());
  return *r.config;
}

// What both plans share: two hosts, one network, a sensitive variable.
const std::string kHead = R"(
cluster: fest
variables:
  secret: {sensitive: true, default: hunter2}
hosts:
  hv1: {uri: "qemu+ssh://root@hv1/system"}
  hv2: {uri: "qemu+ssh://root@hv2/system"}
images:
  deb: {path: /srv/deb.qcow2}
networks:
  front: {cidr: 10.20.0.0/24}
vms:
)";

const std::string kBefore =
    kHead + R"(  api: {image: deb, host: hv1, memory: 1GiB, disks: {data: 2GiB}}
  db: {image: deb, host: hv2}
  old: {image: deb, host: hv2, disks: {pg: 1GiB}}
  cache: {image: deb, host: hv1}
)";

const std::string kAfter =
    kHead + R"(  api: {image: deb, host: hv1, memory: 2GiB, disks: {data: 4GiB}}
  db:
    image: deb
    host: hv2
    cloud_init:
      write_files: [{path: /etc/db.env, content: "PASSWORD=${var.secret}\n"}]
  web: {image: deb, host: hv1, cpus: 2}
  cache: {image: deb, host: hv2}
)";

// The "before" state is what the real executor leaves on the fake hosts.
Plan sample_plan() {
  struct Hosts : test::Lab {
    Hosts() { host("hv2").facts = test::host_facts("hv2", 4, 8ull << 30, false); }
  } p;
  const ExecResult applied = p.apply(p.plan(load(kBefore)));
  INFO(test::failures(applied));
  REQUIRE(applied.success());
  p.stable_network_uuids("fest");
  auto r = make_plan(expand(load(kAfter)), p, {});
  REQUIRE(r.plan.has_value());
  return *r.plan;
}

}  // namespace

TEST_CASE("human plan rendering", "[views][golden]") {
  check_golden("plan_human.txt", views::render_human(sample_plan(), {}));
}

TEST_CASE("human plan rendering with colour marks actions", "[views]") {
  const std::string text = views::render_human(sample_plan(), {true, false});
  CHECK(text.find("\033[32m+ vm.web\033[0m") != std::string::npos);
  CHECK(text.find("\033[31m- vm.old\033[0m") != std::string::npos);
}

TEST_CASE("JSON plan rendering", "[views][golden]") {
  check_golden("plan.json", views::render_json(sample_plan(), {}).dump(2) + "\n");
}

TEST_CASE("markdown plan rendering", "[views][golden]") {
  check_golden("plan.md", views::render_markdown(sample_plan(), {}));
}

TEST_CASE("sensitive values never print unless asked", "[views]") {
  const Plan plan = sample_plan();
  for (const auto& text : {views::render_human(plan, {}), views::render_json(plan, {}).dump(),
                           views::render_markdown(plan, {})}) {
    CHECK(text.find("hunter2") == std::string::npos);
  }
  CHECK(views::render_human(plan, {false, true}).find("PASSWORD=hunter2") != std::string::npos);
  // The sample's uris are not secret: shown as written.
  CHECK(views::render_human(plan, {}).find("host hv1 (qemu+ssh://root@hv1/system)") !=
        std::string::npos);
}

TEST_CASE("no changes says so", "[views]") {
  Plan p;
  p.config_file = "kumo.yaml";
  CHECK(views::summary_line(p) == "No changes. Live state matches kumo.yaml.");
}

TEST_CASE("a secret of any length is masked by its mark and never mangles output", "[views]") {
  // Each secret is used where it is a whole value (memory, the uri) and inside one
  // (cloud-init); the same characters elsewhere in the plan stay as they are.
  for (const std::string secret : {"0", "1", "2", "5", ",", "\"", "e", ":", "null", "MiB"}) {
    INFO("secret: " << secret);
    test::Lab lab;
    const std::string text = R"(
cluster: fest
variables:
  secret: {sensitive: true, default: ')" +
                             secret + R"('}
  mem: {sensitive: true, default: 1GiB}
  uri: {sensitive: true, default: "qemu+ssh://root@hv1.secret.example/system"}
hosts:
  hv1: {uri: "${var.uri}"}
images:
  deb: {path: /srv/deb.qcow2}
networks:
  front: {cidr: 10.20.0.0/24}
vms:
  web: {image: deb, cpus: 2, memory: 512MiB}
  db:
    image: deb
    memory: ${var.mem}
    cloud_init:
      write_files: [{path: /etc/db.env, content: "PASSWORD=${var.secret}"}]
)";
    auto r = make_plan(expand(load(text)), lab, {});
    REQUIRE(r.plan.has_value());
    const Plan& plan = *r.plan;
    const std::string human = views::render_human(plan, {});
    // The values that are not secret are intact, whatever the secret's characters.
    CHECK(human.find("cpus:      2\n") != std::string::npos);
    CHECK(human.find("memory:    512 MiB\n") != std::string::npos);
    CHECK(human.find("memory:    (sensitive)\n") != std::string::npos);
    CHECK(human.find("host hv1 ((sensitive))") != std::string::npos);
    CHECK(human.find("hv1.secret.example") == std::string::npos);
    CHECK(human.find("1 GiB") == std::string::npos);
    // The document is shown, the secret in it masked.
    CHECK(human.find("PASSWORD=(sensitive)") != std::string::npos);
    CHECK(human.find("PASSWORD=" + secret) == std::string::npos);
    const auto json = nlohmann::json::parse(views::render_json(plan, {}).dump());
    CHECK(json["hosts"][0]["uri"] == "(sensitive)");
    for (const auto& c : json["changes"]) {
      for (const auto& a : c["attributes"]) {
        if (c["address"] == "vm.db" && a["name"] == "memory") CHECK(a["after"] == "(sensitive)");
        if (c["address"] == "vm.web" && a["name"] == "memory") CHECK(a["after"] == "512 MiB");
        if (c["address"] == "vm.web" && a["name"] == "cpus") CHECK(a["after"] == 2);
      }
    }
    const std::string md = views::render_markdown(plan, {});
    CHECK(md.find("memory:    512 MiB") != std::string::npos);
    CHECK(md.find("hv1.secret.example") == std::string::npos);
    // Asked for, everything shows.
    const std::string shown = views::render_human(plan, {false, true});
    CHECK(shown.find("PASSWORD=" + secret) != std::string::npos);
    CHECK(shown.find("memory:    1 GiB") != std::string::npos);
  }
}

namespace {

// cloud-init changes a reviewer must be able to read: a package added and a command changed
// (web, recreated), only a secret changed (db), a new VM (cache), static addresses
// (network-config), each with a sensitive value masked inside the document.
std::string cloud_config(const std::string& secret, const std::string& web_init) {
  return R"(
cluster: fest
variables:
  secret: {sensitive: true, default: ")" +
         secret + R"("}
hosts:
  hv1: {uri: "qemu+ssh://root@hv1/system"}
images:
  deb: {path: /srv/deb.qcow2}
networks:
  back: {cidr: 10.30.0.0/24, dhcp: false}
vms:
  web:
    image: deb
    networks: [{network: back, ip: 10.30.0.10}]
    cloud_init:
)" + web_init +
         R"(
  db:
    image: deb
    cloud_init:
      write_files: [{path: /etc/db.env, content: "USER=app\nPASSWORD=${var.secret}\n"}]
)";
}

const std::string kWebBefore = R"(      packages: [nginx]
      runcmd: [systemctl enable --now nginx]
      write_files: [{path: /etc/token, content: "${var.secret}"}])";
const std::string kWebAfter = R"(      packages: [nginx, curl]
      runcmd: [systemctl enable --now nginx, "curl -fsS http://localhost/"]
      write_files: [{path: /etc/token, content: "${var.secret}"}])";

Plan cloud_config_plan() {
  test::Lab lab;
  const ExecResult applied = lab.apply(lab.plan(load(cloud_config("first-Secret", kWebBefore))));
  INFO(test::failures(applied));
  REQUIRE(applied.success());
  lab.stable_network_uuids("fest");
  std::string after = cloud_config("second-Secret", kWebAfter);
  after += "  cache: {image: deb, cloud_init: {packages: [redis-server]}}\n";
  auto r = make_plan(expand(load(after)), lab, {});
  REQUIRE(r.plan.has_value());
  return *r.plan;
}

}  // namespace

TEST_CASE("cloud-config changes are shown as documents and diffs, secrets masked inside",
          "[views][golden]") {
  const Plan plan = cloud_config_plan();
  const std::string human = views::render_human(plan, {});
  const std::string markdown = views::render_markdown(plan, {});
  const std::string json = views::render_json(plan, {}).dump(2) + "\n";
  check_golden("cloud_config_human.txt", human);
  check_golden("cloud_config.md", markdown);
  check_golden("cloud_config.json", json);
  for (const std::string* out : {&human, &markdown, &json}) {
    CHECK(out->find("Secret") == std::string::npos);
    CHECK(out->find("- content: (sensitive)") != std::string::npos);
  }
  // The reviewer sees what changed, line by line.
  CHECK(human.find("\n          +  - curl\n") != std::string::npos);
  CHECK(human.find("\n          +  - curl -fsS http://localhost/\n") != std::string::npos);
  CHECK(markdown.find("\n+  - curl\n") != std::string::npos);
  // A change of a secret alone is still a change, said as such.
  CHECK(human.find("user_data: (changed only in values from sensitive variables)") !=
        std::string::npos);
  const auto doc = views::render_json(plan, {});
  bool diffed = false;
  for (const auto& c : doc["changes"]) {
    for (const auto& a : c["attributes"]) {
      if (c["address"] == "vm.web" && a["name"] == "user_data") {
        CHECK(a["document"] == true);
        CHECK(a["sensitive"] == false);
        CHECK(a["diff"].get<std::string>().find("\n+  - curl\n") != std::string::npos);
        diffed = true;
      }
    }
  }
  CHECK(diffed);
}

TEST_CASE("a plan shows the cloud-config of a new VM whole, sensitive values masked", "[views]") {
  test::Lab lab;
  const Plan plan = lab.plan(load(cloud_config("first-Secret", kWebBefore)));
  const std::string human = views::render_human(plan, {});
  CHECK(human.find("    user_data:      |\n        #cloud-config\n") != std::string::npos);
  CHECK(human.find("- content: (sensitive)\n") != std::string::npos);
  CHECK(human.find("  path: /etc/token\n") != std::string::npos);
  CHECK(human.find("network_config: |\n") != std::string::npos);
  CHECK(human.find("- \"10.30.0.10/24\"") != std::string::npos);
  CHECK(human.find("first-Secret") == std::string::npos);
  // --show-sensitive shows the documents as the seed will hold them.
  CHECK(views::render_human(plan, {false, true}).find("content: first-Secret\n") !=
        std::string::npos);
}
