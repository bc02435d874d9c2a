// The machine a VM runs on: firmware (BIOS/UEFI), secure boot, TPM. Planned and applied on the
// fake lab: what the definition asks libvirt for, that a change recreates the VM and the plan
// says why, that a host which cannot run such a machine is never chosen and a pin to one fails
// the plan before apply, and that a TPM VM never moves cold.
#include <catch2/catch.hpp>

#include "planner/plan_io.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;
using kumo::test::errors_of;
using kumo::test::Lab;
using kumo::test::plan_result;

namespace {

const std::string kWin = R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                         std::string(64, 'a') + R"("}
networks:
  front: {cidr: 10.20.0.0/24}
vms:
  win:
    image: deb
    firmware: uefi
    secure_boot: true
    tpm: true
    host: hv1
)";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

const ResourceChange& vm_change(const Plan& p) {
  for (const auto& c : p.changes)
    if (c.kind() == ResourceKind::Vm) return c;
  FAIL("no VM change");
  throw;
}

void facts(Lab& lab, const std::string& host, bool uefi, bool secure_boot, bool tpm) {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  lab.host(host).facts.uefi = uefi;
  lab.host(host).facts.secure_boot = secure_boot;
  lab.host(host).facts.tpm = tpm;
}

}  // namespace

TEST_CASE("a UEFI VM with secure boot and a TPM is defined so, and the plan shows it",
          "[machine]") {
  Lab lab;
  const Plan p = lab.plan(config(kWin));
  const ResourceChange& c = vm_change(p);
  CHECK(c.action == Action::Create);
  std::map<std::string, Value> shown;
  for (const auto& a : c.attributes) shown[a.name] = a.after;
  CHECK(shown["firmware"] == Value(std::string("uefi")));
  CHECK(shown["secure_boot"] == Value(true));
  CHECK(shown["tpm"] == Value(true));
  // The record carries the machine, so a saved plan does too.
  std::string error;
  const auto back = plan_from_json(plan_to_json(p), &error);
  INFO(error);
  REQUIRE(back);
  CHECK(vm_change(*back).vm()->record.firmware == "uefi");

  const auto result = lab.apply(p);
  INFO(test::failures(result));
  REQUIRE(result.success());
  const DomainSpec& spec = lab.connector.defined.at("hv1/win");
  CHECK(spec.firmware == "efi");
  CHECK(spec.secure_boot);
  CHECK(spec.tpm);
  CHECK(spec.nvram == "/pool/hv1/" + nvram_volume_name("fest", "win"));
  CHECK_FALSE(lab.plan(config(kWin)).has_changes());

  // A BIOS VM asks for none of it (and its record reads as before these fields existed).
  const std::string bios =
      with(with(with(kWin, "    firmware: uefi\n", ""), "    secure_boot: true\n", ""),
           "    tpm: true\n", "");
  const Plan p2 = lab.plan(config(bios));
  const ResourceChange& r = vm_change(p2);
  CHECK(r.action == Action::Replace);
  CHECK(r.reason.find("firmware, secure boot and the TPM are fixed") != std::string::npos);
  std::set<std::string> forcing;
  for (const auto& a : r.attributes)
    if (a.forces_replacement) forcing.insert(a.name);
  CHECK(forcing == std::set<std::string>{"firmware", "secure_boot", "tpm"});
  REQUIRE(lab.apply(p2).success());
  const DomainSpec& plain = lab.connector.defined.at("hv1/win");
  CHECK(plain.firmware.empty());
  CHECK_FALSE(plain.tpm);
  CHECK(plain.nvram.empty());
  CHECK(vm_record_json(*lab.host("hv1").domains.front().owner->spec).find("firmware") ==
        std::string::npos);
}

TEST_CASE("only the TPM changing is a replace too, named in the plan", "[machine]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kWin))).success());
  const Plan p = lab.plan(config(with(kWin, "tpm: true", "tpm: false")));
  const ResourceChange& c = vm_change(p);
  CHECK(c.action == Action::Replace);
  REQUIRE_FALSE(c.attributes.empty());
  CHECK(c.attributes.front().name == "tpm");
}

TEST_CASE("a host without OVMF or swtpm is never chosen, and a pin to it fails the plan",
          "[machine]") {
  Lab lab;
  facts(lab, "hv1", false, false, false);
  facts(lab, "hv2", true, true, true);
  SECTION("pinned: a located error naming the host and what to install, nothing planned") {
    const auto r = plan_result(lab, kWin);
    const std::string e = errors_of(r);
    INFO(e);
    CHECK_FALSE(r.plan.has_value());
    CHECK(e.find("kumo.yaml:11:3: error: vm.win cannot run on host \"hv1\": it has no UEFI "
                 "firmware for q35 guests (install Debian's ovmf there)") != std::string::npos);
  }
  SECTION("unpinned: placed where the machine can run") {
    const Plan p = lab.plan(config(with(kWin, "    host: hv1\n", "")));
    CHECK(vm_change(p).host == "hv2");
  }
  SECTION("the TPM alone decides too") {
    facts(lab, "hv1", true, true, false);
    const auto r = plan_result(lab, kWin);
    CHECK(errors_of(r).find("has no TPM emulator (install Debian's swtpm and swtpm-tools "
                            "there)") != std::string::npos);
  }
  SECTION("a host that does not say (an older or other driver) is not refused") {
    std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
    lab.host("hv1").facts.uefi.reset();
    lab.host("hv1").facts.secure_boot.reset();
    lab.host("hv1").facts.tpm.reset();
  }
}

TEST_CASE("a VM with a TPM never moves cold: its state would stay behind", "[machine][move]") {
  Lab lab;
  lab.connector.shared_pool_path = "/var/lib/libvirt/images";
  const std::string stopped = with(kWin, "    host: hv1\n", "    host: hv1\n    running: false\n");
  REQUIRE(lab.apply(lab.plan(config(stopped))).success());
  const auto r = plan_result(lab, with(stopped, "host: hv1", "host: hv2"));
  CHECK_FALSE(r.plan.has_value());
  CHECK(errors_of(r).find("vm.win has tpm: true and cannot move live from hv1 to hv2 (it is "
                          "not running); a cold move would lose its TPM state") !=
        std::string::npos);
}

TEST_CASE("bridge and direct NICs, model and queues reach the definition, and a change recreates",
          "[machine]") {
  Lab lab;
  const std::string nics = with(with(kWin, "    host: hv1\n", R"(    host: hv1
    cpus: 2
    networks:
      - front
      - {bridge: br0, mac: "52:54:00:aa:00:01"}
      - {direct: eth1, mode: vepa, model: e1000e}
      - {network: front, queues: 4}
)"),
                                "    tpm: true\n", "");
  const Plan p = lab.plan(config(nics));
  REQUIRE(lab.apply(p).success());
  const DomainSpec& spec = lab.connector.defined.at("hv1/win");
  REQUIRE(spec.nics.size() == 4);
  CHECK(spec.nics[0].network == "kumo_fest_front");
  CHECK(spec.nics[0].queues == 2);  // one per vCPU by default
  CHECK(spec.nics[0].model == "virtio");
  CHECK(spec.nics[1].bridge == "br0");
  CHECK(spec.nics[1].network.empty());
  CHECK(spec.nics[1].mac == "52:54:00:aa:00:01");
  CHECK(spec.nics[2].direct == "eth1");
  CHECK(spec.nics[2].mode == "vepa");
  CHECK(spec.nics[2].model == "e1000e");
  CHECK(spec.nics[2].queues == 0);
  CHECK(spec.nics[3].queues == 4);
  // The plan lists them as people wrote them.
  std::vector<std::string> shown;
  for (const auto& c : p.changes)
    for (const auto& a : c.attributes)
      if (a.name == "networks") shown = std::get<std::vector<std::string>>(a.after);
  REQUIRE(shown.size() == 4);
  CHECK(shown[1] == "bridge br0 52:54:00:aa:00:01");
  CHECK(shown[2].rfind("direct eth1 (vepa) ", 0) == 0);
  CHECK(shown[2].find(" model e1000e") != std::string::npos);
  CHECK(shown[3].find(" queues 4") != std::string::npos);
  CHECK_FALSE(lab.plan(config(nics)).has_changes());
  const Plan changed = lab.plan(config(with(nics, "mode: vepa", "mode: private")));
  CHECK(vm_change(changed).action == Action::Replace);
}

TEST_CASE("the disks' cache mode: none by default, a change restarts a running VM", "[machine]") {
  Lab lab;
  const std::string plain = with(kWin, "    tpm: true\n", "");
  REQUIRE(lab.apply(lab.plan(config(plain))).success());
  for (const auto& d : lab.connector.defined.at("hv1/win").disks) CHECK(d.cache == "none");
  const std::string wb = with(plain, "    host: hv1\n", "    host: hv1\n    cache: writeback\n");
  const Plan p = lab.plan(config(wb));
  const ResourceChange& c = vm_change(p);
  CHECK(c.action == Action::Update);
  CHECK(c.disruption == Disruption::Restart);
  CHECK(c.steps.shutdown);
  REQUIRE(lab.apply(p).success());
  for (const auto& d : lab.connector.defined.at("hv1/win").disks) CHECK(d.cache == "writeback");
  CHECK_FALSE(lab.plan(config(wb)).has_changes());
}
