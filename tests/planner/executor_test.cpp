// The executor on the fake provider and fake sessions: a whole apply, ordering, parallelism
// limits, failure isolation, readiness, destroy, and a second plan finding nothing to do.
#include "planner/executor.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>

#include <catch2/catch.hpp>

#include "cli/views/plan_view.h"
#include "planner/config/loader.h"
#include "planner/planner.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

TEST_CASE("apply from nothing converges: a second plan has no changes", "[executor]") {
  Lab lab;
  const auto cfg = config(kCluster);
  const Plan p = lab.plan(cfg);
  REQUIRE(p.images.size() == 1);
  CHECK(p.images[0].upload_to == std::vector<std::string>{"hv1", "hv2", "hv3"});
  const ExecResult r = lab.apply(p);
  INFO(failures(r));
  REQUIRE(r.success());
  CHECK(r.vms.size() == 3);
  for (const auto& vm : r.vms) {
    CHECK(vm.ready);
    CHECK_FALSE(vm.addresses.empty());
  }
  // Downloaded once, uploaded once per host, with its completion marker.
  CHECK(lab.fetches == 1);
  CHECK(lab.connector.count("hv1 upload_volume kumo-image_sha256-") == 1);
  const std::string base = "kumo-image_sha256-" + kHex;
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    lab.connector.provider.host(h);
    bool marker = false;
    for (const auto& v : lab.host(h).volumes) marker = marker || v.name == base + ".done";
    CHECK(marker);
  }
  // Root disks are overlays on the host's copy of the base image, grown to `disk`.
  for (const auto& [h, inst] : std::vector<std::pair<std::string, std::string>>{
           {"hv1", "web-0"}, {"hv2", "web-1"}, {"hv3", "web-2"}}) {
    bool found = false;
    for (const auto& v : lab.host(h).volumes) {
      if (v.name != "kumo_fest_" + inst + "_root.qcow2") continue;
      found = true;
      CHECK(v.backing_path == "/pool/" + h + "/" + base);
      CHECK(v.capacity == 4ull << 30);
    }
    CHECK(found);
    // The seed is an ISO 9660 image.
    CHECK(lab.connector.contents[h + "/kumo_fest_" + inst + "_seed.iso"].substr(32769, 5) ==
          "CD001");
  }
  const Plan again = lab.plan(cfg);
  CHECK_FALSE(again.has_changes());
  CHECK(again.images.empty());
}

TEST_CASE("steps run in dependency order", "[executor]") {
  Lab lab;
  const auto cfg = config(kCluster);
  const ExecResult r = lab.apply(lab.plan(cfg));
  INFO(failures(r));
  REQUIRE(r.success());
  auto& c = lab.connector;
  for (const auto& [h, inst] : std::vector<std::pair<std::string, std::string>>{
           {"hv1", "web-0"}, {"hv2", "web-1"}, {"hv3", "web-2"}}) {
    const long upload = c.index_of(h + " create_volume kumo-image_sha256-" + kHex + ".done");
    const long root = c.index_of(h + " create_volume kumo_fest_" + inst + "_root");
    const long seed = c.index_of(h + " upload_volume kumo_fest_" + inst + "_seed");
    const long data = c.index_of(h + " create_volume kumo_fest_" + inst + "_data-data");
    const long net = c.index_of(h + " define_network kumo_fest_front");
    const long define = c.index_of(h + " define_domain " + inst);
    const long start = c.index_of(h + " start_domain " + inst);
    for (long i : {upload, root, seed, data, net, define, start}) REQUIRE(i >= 0);
    CHECK(upload < root);
    CHECK(root < define);
    CHECK(seed < define);
    CHECK(data < define);
    CHECK(net < define);
    CHECK(define < start);
  }
}

TEST_CASE("destroy deletes VMs before their volumes and networks, and nothing foreign",
          "[executor]") {
  Lab lab;
  const auto cfg = config(kCluster);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  lab.add_domain("hv1", "handmade");
  lab.add_network("hv1", "default");
  lab.add_volume("hv1", "precious.qcow2", 1 << 30);
  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(cfg, destroy);
  for (const auto& ch : p.changes) CHECK(ch.action == Action::Delete);
  const ExecResult r = lab.apply(p);
  INFO(failures(r));
  REQUIRE(r.success());
  auto& c = lab.connector;
  CHECK(c.index_of("hv1 delete_domain web-0") <
        c.index_of("hv1 delete_volume kumo_fest_web-0_root"));
  CHECK(c.index_of("hv1 delete_domain web-0") < c.index_of("hv1 delete_network kumo_fest_front"));
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    for (const auto& d : lab.host(h).domains) CHECK(!(d.owner && d.owner->cluster == "fest"));
    for (const auto& n : lab.host(h).networks) CHECK(!(n.owner && n.owner->cluster == "fest"));
    for (const auto& v : lab.host(h).volumes) CHECK(!(v.owner && v.owner->cluster == "fest"));
  }
  // Untouched: what kumo did not make, and the shared base image.
  CHECK(lab.host("hv1").domains.size() == 1);
  CHECK(lab.host("hv1").networks.size() == 1);
  std::size_t left = 0;
  for (const auto& v : lab.host("hv1").volumes)
    left += v.name == "precious.qcow2" || v.name.rfind("kumo-image_", 0) == 0;
  CHECK(left == 3);
  CHECK(c.count("hv1 delete_domain handmade") == 0);
  CHECK_FALSE(lab.plan(cfg, destroy).has_changes());
}

TEST_CASE("a new VM's serial log is made before its domain and goes with it, never in the plan",
          "[executor]") {
  // libvirt lists a file that virtlogd wrote behind its back only after refreshing the whole
  // pool; a log kumo made itself is listed from the start and deleted without one.
  Lab lab;
  const auto cfg = config(kCluster);
  const std::string log = "kumo_fest_web-0_serial.log";
  auto& c = lab.connector;
  auto has_log = [&] {
    const auto& vs = lab.host("hv1").volumes;
    return std::any_of(vs.begin(), vs.end(),
                       [&](const ObservedVolume& v) { return v.name == log; });
  };
  SECTION("made, listed, and removed with its VM") {
    REQUIRE(lab.apply(lab.plan(cfg)).success());
    CHECK(has_log());
    CHECK(c.index_of("hv1 create_volume " + log) < c.index_of("hv1 define_domain web-0"));
    CHECK_FALSE(lab.plan(cfg).has_changes());
    PlanOptions destroy;
    destroy.destroy = true;
    const Plan p = lab.plan(cfg, destroy);
    for (const auto& ch : p.changes) {
      CHECK(!(ch.observed && ch.observed->name == log));  // the VM's own step removes it
    }
    const ExecResult r = lab.apply(p);
    INFO(failures(r));
    REQUIRE(r.success());
    CHECK_FALSE(has_log());
    CHECK(c.count("hv1 delete_volume " + log) == 1);
    CHECK(c.index_of("hv1 delete_domain web-0") < c.index_of("hv1 delete_volume " + log));
  }
  SECTION("a log that cannot be made does not stop the apply") {
    c.fail.insert("hv1 create_volume " + log);
    const ExecResult r = lab.apply(lab.plan(cfg));
    INFO(failures(r));
    CHECK(r.success());
    CHECK_FALSE(has_log());
    CHECK_FALSE(lab.plan(cfg).has_changes());
  }
}

TEST_CASE("parallelism limits hold overall and per host", "[executor]") {
  Lab lab;
  auto text = kCluster;
  text.replace(text.find("count: 3"), 8, "count: 9");
  const auto cfg = config(text);
  lab.connector.delay = std::chrono::milliseconds(5);
  ExecOptions opts;
  opts.parallelism = 4;
  opts.per_host = 2;
  const ExecResult r = lab.apply(lab.plan(cfg), opts);
  INFO(failures(r));
  REQUIRE(r.success());
  CHECK(lab.connector.max_in_flight_total <= 4);
  CHECK(lab.connector.max_in_flight_total >= 2);  // it did run things at once
  for (const char* h : {"hv1", "hv2", "hv3"}) CHECK(lab.connector.max_in_flight[h] <= 2);
}

TEST_CASE("the steps that are ready start a host at a time: every host gets going at once",
          "[executor]") {
  // 9 VMs, 3 per host, destroyed with room for 3 steps at once: the first three steps go to
  // three hosts (not all to hv1, whose steps come first in the plan), and so on.
  Lab lab;
  auto text = kCluster;
  text.replace(text.find("count: 3"), 8, "count: 9");
  REQUIRE(lab.apply(lab.plan(config(text))).success());
  PlanOptions destroy;
  destroy.destroy = true;
  lab.connector.delay = std::chrono::milliseconds(20);  // the first three run while all start
  ExecOptions opts;
  opts.parallelism = 3;
  opts.per_host = 3;
  std::vector<ExecEvent> events;
  const ExecResult r = lab.apply(lab.plan(config(text), destroy), opts, &events);
  INFO(failures(r));
  REQUIRE(r.success());
  std::vector<std::string> first;
  for (const auto& e : events) {
    if (e.kind == ExecEvent::Kind::Started && first.size() < 3) first.push_back(e.host);
  }
  std::sort(first.begin(), first.end());
  CHECK(first == std::vector<std::string>{"hv1", "hv2", "hv3"});
}

TEST_CASE("one host failing stops only what depends on it", "[executor]") {
  Lab lab;
  const auto cfg = config(kCluster);
  lab.connector.fail.insert("hv2 define_domain");
  const Plan p = lab.plan(cfg);
  std::vector<ExecEvent> events;
  const ExecResult r = lab.apply(p, {}, &events);
  CHECK_FALSE(r.success());
  const auto* failed = step(r, "hv2/vm.web-1/define");
  REQUIRE(failed);
  CHECK(failed->status == StepStatus::Failed);
  CHECK_THAT(failed->message, Catch::Contains("host hv2") && Catch::Contains("injected failure"));
  CHECK(step(r, "hv2/vm.web-1/start")->status == StepStatus::Skipped);
  CHECK_THAT(step(r, "hv2/vm.web-1/start")->message,
             Catch::Contains("define vm.web-1 on hv2 failed"));
  CHECK(step(r, "hv2/vm.web-1/wait for cloud-init")->status == StepStatus::Skipped);
  CHECK(step(r, "hv1/vm.web-0/wait for cloud-init")->status == StepStatus::Ok);
  CHECK(step(r, "hv3/vm.web-2/wait for cloud-init")->status == StepStatus::Ok);
  CHECK(r.count(StepStatus::Failed) == 1);
  CHECK(r.count(StepStatus::Skipped) == 2);
  CHECK(r.vms.size() == 2);
  // Every step reported a finish.
  std::size_t finished = 0;
  for (const auto& e : events) finished += e.kind == ExecEvent::Kind::Finished;
  CHECK(finished == r.steps.size());
  // The rerun finishes the rest only.
  lab.connector.fail.clear();
  const Plan rest = lab.plan(cfg);
  for (const auto& c : rest.changes) {
    CHECK((c.address.str() == "vm.web-1" || (c.parent && c.parent->str() == "vm.web-1")));
    CHECK(c.host == "hv2");
  }
  for (const auto& im : rest.images) CHECK_FALSE(im.needed());
  REQUIRE(lab.apply(rest).success());
  CHECK_FALSE(lab.plan(cfg).has_changes());
}

TEST_CASE("a host that cannot be reached fails its own steps only", "[executor]") {
  Lab lab;
  const auto cfg = config(kCluster);
  const Plan p = lab.plan(cfg);
  lab.unreachable.insert("hv3");  // went away after the plan was made
  const ExecResult r = lab.apply(p);
  CHECK_FALSE(r.success());
  for (const auto& s : r.steps) {
    if (s.host == "hv3") {
      CHECK(s.status != StepStatus::Ok);
    } else {
      CHECK(s.status == StepStatus::Ok);
    }
  }
  CHECK_THAT(step(r, "hv3/image.deb/upload")->message, Catch::Contains("connection refused"));
}

TEST_CASE("a host that has the image gets no upload, a cut-short upload is redone", "[executor]") {
  Lab lab;
  const std::string base = "kumo-image_sha256-" + kHex;
  lab.add_volume("hv1", base, 70000);
  lab.add_volume("hv1", base + ".done", 0);
  lab.add_volume("hv2", base, 1234);  // no marker: an upload that was cut short
  lab.connector.contents["hv1/" + base] = std::string("QFI\xfb", 4) + std::string(60, '\0');
  const auto cfg = config(kCluster);
  const Plan p = lab.plan(cfg);
  REQUIRE(p.images.size() == 1);
  CHECK(p.images[0].present_on == std::vector<std::string>{"hv1"});
  CHECK(p.images[0].upload_to == std::vector<std::string>{"hv2", "hv3"});
  CHECK(p.images[0].partial_on == std::vector<std::string>{"hv2"});
  const ExecResult r = lab.apply(p);
  INFO(failures(r));
  REQUIRE(r.success());
  CHECK(lab.connector.count("hv1 upload_volume " + base) == 0);
  CHECK(lab.connector.count("hv2 delete_volume " + base) == 1);
  CHECK(lab.connector.count("hv2 upload_volume " + base) == 1);
}

TEST_CASE("a VM that never gets ready fails with what was last seen", "[executor]") {
  Lab lab;
  auto text = kCluster;
  text.replace(text.find("count: 3"), 8, "count: 2");
  text += "    wait_timeout: 1s\n";
  const auto cfg = config(text);
  lab.connector.cloud_init["web-0"] = "error";
  lab.connector.agent_down.insert("web-1");
  lab.connector.contents["hv2/kumo_fest_web-1_serial.log"] = "boot\nKernel panic - not syncing\n";
  const ExecResult r = lab.apply(lab.plan(cfg));
  const auto* w0 = step(r, "hv1/vm.web-0/wait for cloud-init");
  const auto* w1 = step(r, "hv2/vm.web-1/wait for cloud-init");
  REQUIRE(w0);
  REQUIRE(w1);
  CHECK(w0->status == StepStatus::Failed);
  CHECK_THAT(w0->message, Catch::Contains("cloud-init finished with status \"error\"") &&
                              Catch::Contains("modules-final failed"));
  CHECK(w1->status == StepStatus::Failed);
  CHECK_THAT(w1->message, Catch::Contains("did not answer") && Catch::Contains("Kernel panic"));
  CHECK(r.vms.empty());
}

TEST_CASE("wait_for none and running do not ask the agent", "[executor]") {
  Lab lab;
  auto text = kCluster;
  text.replace(text.find("count: 3"), 8, "count: 1");
  text += "    wait_for: running\n";
  const auto cfg = config(text);
  lab.connector.agent_down.insert("web-0");
  const ExecResult r = lab.apply(lab.plan(cfg));
  INFO(failures(r));
  CHECK(r.success());
  CHECK(step(r, "hv1/vm.web-0/wait for running") != nullptr);
}

TEST_CASE("an image that fails to download or verify is uploaded nowhere", "[executor]") {
  Lab lab;
  const auto cfg = config(kCluster);
  lab.fetcher = [](const ImagePlan& im, const FetchTick&) -> FetchedImage {
    throw std::runtime_error("image \"" + im.name +
                             "\": checksum mismatch for /srv/deb.qcow2: expected sha256:aa…, got "
                             "sha256:bb… (the download was discarded)");
  };
  const ExecResult r = lab.apply(lab.plan(cfg));
  CHECK_FALSE(r.success());
  const auto* fetch = step(r, "local/image.deb/fetch");
  REQUIRE(fetch);
  CHECK(fetch->status == StepStatus::Failed);
  CHECK_THAT(fetch->message, Catch::Contains("checksum mismatch"));
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    for (const auto& v : lab.host(h).volumes) CHECK(v.name.rfind("kumo-image_", 0) != 0);
    CHECK(lab.connector.count(std::string(h) + " upload_volume kumo-image_") == 0);
    CHECK(lab.connector.count(std::string(h) + " define_domain") == 0);
  }
  // Networks do not depend on the image: they were made.
  CHECK(lab.connector.count("hv1 define_network") == 1);
}

TEST_CASE("on a full host, the VM leaving is deleted before the one taking its room starts",
          "[executor]") {
  // hv1 has 1 GiB: room for `old` (768 MiB) or `new` (768 MiB), never both at once.
  Lab lab;
  lab.host("hv1").facts.memory = 1ull << 30;
  const std::string head = R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                           kHex + R"("}
vms:
)";
  REQUIRE(lab.apply(lab.plan(config(head + "  old: {image: deb, memory: 768MiB}\n"))).success());
  // Deleting takes long: without ordering, the new VM would start on a host still full.
  lab.connector.slow["hv1 delete_domain old"] = std::chrono::milliseconds(300);
  const Plan p = lab.plan(config(head + "  new: {image: deb, memory: 768MiB}\n"));
  const ExecResult r = lab.apply(p);
  INFO(failures(r));
  REQUIRE(r.success());
  auto& c = lab.connector;
  const long deleted = c.timeline_index("end hv1 delete_domain old");
  const long started = c.timeline_index("begin hv1 start_domain new");
  REQUIRE(deleted >= 0);
  REQUIRE(started >= 0);
  CHECK(deleted < started);
}

TEST_CASE("apply's errors name a host whose uri is sensitive without showing the uri",
          "[executor]") {
  Lab lab;
  std::string text = kCluster;
  text.replace(text.find("hosts:"), 6,
               "variables:\n  uri: {sensitive: true, default: \"test:///hv1.secret.example\"}\n"
               "hosts:");
  text.replace(text.find("\"test:///hv1\""), 13, "\"${var.uri}\"");
  const Plan p = lab.plan(config(text));
  lab.add_network("hv1", "kumo_fest_front");  // made by someone else since planning
  const ExecResult r = lab.apply(p);
  REQUIRE_FALSE(r.success());
  const auto* failed = step(r, "hv1/network.front/create");
  REQUIRE(failed);
  CHECK_THAT(failed->message, Catch::Contains("host hv1 ((sensitive))"));
  for (const auto& s : r.steps) CHECK(s.message.find("secret.example") == std::string::npos);
}

TEST_CASE("kumo destroy says what it does: in the file or not, and nothing to do plainly",
          "[executor]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kCluster))).success());
  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(config(kCluster), destroy);
  CHECK(p.destroy);
  for (const auto& c : p.changes) {
    INFO(c.address.str() << " on " << c.host << ": " << c.reason);
    if (!c.parent) CHECK(c.reason == "kumo destroy (still in kumo.yaml)");
    // The VMs on the network go in the same run: nobody loses connectivity.
    CHECK(c.reason.find("lose connectivity") == std::string::npos);
    CHECK(c.disruption != Disruption::Restart);
  }
  REQUIRE(lab.apply(p).success());
  const Plan again = lab.plan(config(kCluster), destroy);
  CHECK_FALSE(again.has_changes());
  CHECK(views::summary_line(again) ==
        "Nothing to destroy: the hosts looked at hold nothing of cluster fest.");
}
