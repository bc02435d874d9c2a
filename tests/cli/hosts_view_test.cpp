// kumo hosts' views of a report written out by hand: a KVM host, an emulated one (the kvm reason
// shown), an unreachable one. Golden files: tests/golden/hosts_human.txt and hosts.json.
#include "cli/views/hosts_view.h"

#include <catch2/catch.hpp>

#include "tests/golden.h"

using namespace kumo;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

HostInfo kvm_host() {
  HostInfo h;
  h.name = "hv1";
  h.uri = "qemu+ssh://root@hv1/system";
  h.reachable = true;
  h.facts.hostname = "hv1.lab";
  h.facts.arch = "x86_64";
  h.facts.cpus = 8;
  h.facts.memory = 32 * GiB;
  h.facts.free_memory = 20 * GiB;
  h.facts.kvm = true;
  h.facts.libvirt_version = "9.0.0";
  h.facts.cpu_model = "Skylake-Client-IBRS";
  h.facts.cpu_features = {"vmx", "vmx-ept"};
  h.facts.detailed = true;
  h.facts.hypervisor = "QEMU";
  h.facts.hypervisor_version = "7.2.0";
  h.facts.nested = true;
  h.facts.uefi = h.facts.secure_boot = h.facts.tpm = true;
  h.virt_type = "kvm";
  h.pool = {"default", true, true, 500 * GiB, 320 * GiB};
  h.vms = {"web-0", "web-1"};
  h.admit.cpu_overcommit = 4;
  h.admit.memory_overcommit = 1;
  h.admit.room = {32 * GiB, 32, 6 * GiB, 5};
  return h;
}

HostInfo emulated_host() {
  HostInfo h;
  h.name = "hv2";
  h.uri = "(sensitive)";
  h.drain = true;
  h.reachable = true;
  h.facts.hostname = "hv2.lab";
  h.facts.arch = "x86_64";
  h.facts.cpus = 2;
  h.facts.memory = 4 * GiB;
  h.facts.kvm = false;  // free memory unknown: 0
  h.facts.kvm_reason =
      "KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host — check that /dev/kvm "
      "exists there, VT-x/AMD-V is enabled in its firmware, and the kvm_intel or kvm_amd module "
      "is loaded";
  h.facts.libvirt_version = "9.0.0";
  h.facts.cpu_model = "qemu64";
  h.facts.cpu_features = {"hypervisor"};
  h.facts.detailed = true;
  h.facts.uefi = true;  // OVMF without its secure-boot build, and no swtpm
  h.facts.secure_boot = h.facts.tpm = false;
  h.facts.hypervisor = "QEMU";
  h.facts.hypervisor_version = "7.2.0";
  h.virt_type = "qemu";
  h.pool = {"vms", true, false, 0, 0};
  h.admit.cpu_overcommit = 1.5;
  h.admit.memory_overcommit = 1;
  h.admit.room = {4 * GiB, 3, 0, 0};
  return h;
}

HostsReport sample() {
  HostsReport r;
  r.cluster = "fest";
  HostInfo down;
  down.name = "hv3";
  down.uri = "qemu+ssh://root@hv3/system";
  down.error = "host hv3 (qemu+ssh://root@hv3/system): connection refused — is sshd running there?";
  r.hosts = {kvm_host(), emulated_host(), down};
  return r;
}

}  // namespace

TEST_CASE("kumo hosts for people: one aligned row per host, then what did not fit", "[views]") {
  const std::string text = views::render_hosts_human(sample());
  test::check_golden("hosts_human.txt", text);
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    INFO(text.substr(start, end - start));
    CHECK(end - start <= 100);
    start = end + 1;
  }
}

TEST_CASE("kumo hosts --json: the documented fields, null where a host cannot say", "[views]") {
  const auto json = views::render_hosts_json(sample());
  test::check_golden("hosts.json", json.dump(2) + "\n");
  CHECK(json["schema_version"] == 1);
  const auto& up = json["hosts"][0];
  for (const char* field : {"name", "uri", "reachable", "kvm", "virt_type", "cpu_model", "cpus",
                            "memory_bytes", "memory_free_bytes", "vms"})
    CHECK(up.contains(field));
  CHECK(up["kvm"] == true);
  CHECK(up["qemu_version"] == "7.2.0");
  CHECK(up["nested"] == true);
  CHECK(up["uefi"] == true);
  CHECK(up["tpm"] == true);
  CHECK(up["admit"]["vcpus"] == 27);
  CHECK(up["admit"]["memory_bytes"] == 26 * GiB);
  const auto& emulated = json["hosts"][1];
  CHECK(emulated["kvm"] == false);
  CHECK(emulated["kvm_reason"].get<std::string>().find("/dev/kvm") != std::string::npos);
  CHECK(emulated["nested"].is_null());
  CHECK(emulated["secure_boot"] == false);
  CHECK(emulated["tpm"] == false);
  CHECK(emulated["memory_free_bytes"].is_null());
  CHECK(emulated["pool"]["capacity_bytes"].is_null());
  CHECK(emulated["admit"]["vcpus"] == 3);
  const auto& down = json["hosts"][2];
  CHECK(down["reachable"] == false);
  CHECK(down["error"].get<std::string>().find("connection refused") != std::string::npos);
  for (const char* field : {"kvm", "virt_type", "cpus", "memory_bytes", "vms", "pool", "admit"})
    CHECK(down[field].is_null());
}
