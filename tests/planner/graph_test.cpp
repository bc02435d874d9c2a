// The task graph built from a plan, as a pure function: no threads, no hosts. Which steps a plan
// makes, what they do, and what each waits for.
#include "planner/exec/graph.h"

#include <catch2/catch.hpp>

#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::exec;
using namespace kumo::test;

namespace {

const Task& task(const TaskGraph& g, const std::string& id) {
  const auto i = g.find(id);
  INFO(id);
  REQUIRE(i.has_value());
  return g.tasks[*i];
}

bool waits_for(const TaskGraph& g, const std::string& id, const std::string& dep) {
  const Task& t = task(g, id);
  const auto d = g.find(dep);
  return d && std::find(t.deps.begin(), t.deps.end(), *d) != t.deps.end();
}

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a new VM: volumes and its network before define, then start, then wait", "[graph]") {
  Lab lab;
  const Plan p = lab.plan(config(kCluster));
  const TaskGraph g = build_graph(p);
  const std::string vm = "hv1/vm.web-0/";
  CHECK(task(g, "local/image.deb/fetch").kind == StepKind::FetchImage);
  CHECK(waits_for(g, "hv1/image.deb/upload", "local/image.deb/fetch"));
  CHECK(task(g, "hv1/image.deb/upload").slot == Slot::Upload);
  CHECK(waits_for(g, "hv1/volume.web-0/root/create", "hv1/image.deb/upload"));
  CHECK(task(g, "hv1/volume.web-0/seed/upload").kind == StepKind::UploadSeed);
  for (const char* dep : {"hv1/volume.web-0/root/create", "hv1/volume.web-0/seed/upload",
                          "hv1/volume.web-0/data/data/create", "hv1/network.front/create"})
    CHECK(waits_for(g, vm + "define", dep));
  CHECK_FALSE(waits_for(g, vm + "define", "hv2/network.front/create"));  // its own host only
  CHECK(waits_for(g, vm + "start", vm + "define"));
  CHECK(waits_for(g, vm + "wait for cloud-init", vm + "start"));
  CHECK(task(g, vm + "wait for cloud-init").slot == Slot::Free);  // waiting takes no slot
  // Every dependency is built before its dependent: the graph has no cycle.
  for (std::size_t i = 0; i < g.tasks.size(); ++i)
    for (std::size_t d : g.tasks[i].deps) CHECK(d < i);
}

TEST_CASE("running: false defines the VM and neither starts nor waits", "[graph]") {
  Lab lab;
  const Plan p =
      lab.plan(config(with(kCluster, "    count: 3\n", "    count: 3\n    running: false\n")));
  const TaskGraph g = build_graph(p);
  CHECK(g.find("hv1/vm.web-0/define"));
  CHECK_FALSE(g.find("hv1/vm.web-0/start"));
  CHECK_FALSE(g.find("hv1/vm.web-0/wait for cloud-init"));
}

TEST_CASE("a restart: shutdown, then disks and the definition, then start and wait", "[graph]") {
  Lab lab;
  const auto cfg = config(kCluster);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  const Plan p = lab.plan(config(with(kCluster, "memory: 512MiB", "memory: 2GiB")));
  const TaskGraph g = build_graph(p);
  const std::string vm = "hv1/vm.web-0/";
  CHECK(task(g, vm + "shutdown").kind == StepKind::ShutdownVm);
  CHECK(waits_for(g, vm + "update", vm + "shutdown"));
  CHECK(waits_for(g, vm + "start", vm + "update"));
  CHECK(waits_for(g, vm + "wait for cloud-init", vm + "start"));
}

TEST_CASE("a live change is one update step: no shutdown, no start", "[graph]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kCluster))).success());
  const Plan p = lab.plan(config(with(kCluster, "memory: 512MiB", "memory: 1GiB")));
  const TaskGraph g = build_graph(p);
  CHECK(task(g, "hv1/vm.web-0/update").kind == StepKind::UpdateVm);
  CHECK_FALSE(g.find("hv1/vm.web-0/shutdown"));
  CHECK_FALSE(g.find("hv1/vm.web-0/start"));
}

TEST_CASE("destroy: volumes after their domain, networks after every VM delete on the host",
          "[graph]") {
  Lab lab;
  const auto cfg = config(kCluster);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(cfg, destroy);
  const TaskGraph g = build_graph(p);
  CHECK(waits_for(g, "hv1/volume.web-0/root/delete", "hv1/vm.web-0/delete"));
  CHECK(waits_for(g, "hv1/volume.web-0/data/data/delete", "hv1/vm.web-0/delete"));
  CHECK(waits_for(g, "hv1/network.front/delete", "hv1/vm.web-0/delete"));
  CHECK_FALSE(waits_for(g, "hv1/network.front/delete", "hv2/vm.web-1/delete"));
  // The VM's delete saw its domain gone: its volumes' deletes need not look again.
  CHECK(task(g, "hv1/volume.web-0/root/delete").after_vm_delete);
  CHECK(task(g, "hv1/volume.web-0/data/data/delete").after_vm_delete);
}

TEST_CASE("a volume deleted without its VM's delete before it asks about the domain", "[graph]") {
  Lab lab;
  lab.add_volume("hv1", "kumo_fest_web-9_root.qcow2", 1 << 20);  // left over: no VM of the file
  const Plan p = lab.plan(config(kCluster));
  const TaskGraph g = build_graph(p);
  CHECK(task(g, "hv1/volume.web-9/root/delete").deps.empty());
  CHECK_FALSE(task(g, "hv1/volume.web-9/root/delete").after_vm_delete);
}

TEST_CASE("a VM placed into room that a delete or a shrink frees starts after it", "[graph]") {
  // The new file drops old (hv2), shrinks api (hv3), and adds db on hv2 and cache on hv3: each
  // new VM's start waits for its own host's delete or shrink, not for other hosts'.
  Lab lab;
  const std::string api = "  api: {image: deb, host: hv3, memory: 2GiB}\n";
  REQUIRE(
      lab.apply(lab.plan(config(kCluster + api + "  old: {image: deb, host: hv2}\n"))).success());
  const std::string next = kCluster + with(api, "2GiB", "1GiB") +
                           "  db: {image: deb, host: hv2}\n  cache: {image: deb, host: hv3}\n";
  const Plan p = lab.plan(config(next));
  const TaskGraph g = build_graph(p);
  CHECK(waits_for(g, "hv2/vm.db/start", "hv2/vm.old/delete"));
  CHECK(waits_for(g, "hv3/vm.cache/start", "hv3/vm.api/update"));  // api shrinks
  CHECK_FALSE(waits_for(g, "hv3/vm.cache/start", "hv2/vm.old/delete"));
  CHECK_FALSE(waits_for(g, "hv2/vm.db/start", "hv3/vm.api/update"));
  CHECK(task(g, "hv3/vm.api/update").change->steps.frees_room);
}

TEST_CASE("a disk change kumo does not do in place fails with the fix", "[graph]") {
  Plan p;
  p.cluster = "fest";
  ResourceChange vm;
  vm.address = Address::vm("web");
  vm.host = "hv1";
  vm.action = Action::Update;
  vm.desired = VmPayload{};
  ResourceChange root;
  root.address = Address::volume("web", "root");
  root.host = "hv1";
  root.parent = vm.address;
  root.action = Action::Replace;
  p.changes = {vm, root};
  const TaskGraph g = build_graph(p);
  const Task& t = task(g, "hv1/volume.web/root/replace");
  CHECK(t.kind == StepKind::RefuseDisk);
  CHECK(waits_for(g, "hv1/vm.web/update", "hv1/volume.web/root/replace"));
}
