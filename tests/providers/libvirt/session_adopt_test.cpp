// What adopting a domain made by hand needs of libvirt, against the test driver in process:
// the domain's machine read from its XML (firmware, TPM), kumo import's entry from a real
// observe, renaming a shut-off domain, and kumo's mark written onto a domain kumo did not define.
#include <catch2/catch.hpp>

#include "planner/import.h"
#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/libvirt/session.h"
#include "providers/libvirt/xml_parse.h"
#include "providers/ownership.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

const HostTarget kHost{"hv1", "test:///default", "default-pool"};

// A domain defined by hand (as virt-install would), on the driver's default network.
const char* kHandMade = R"(<domain type='test'>
  <name>legacy</name>
  <memory unit='MiB'>768</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/default-pool/legacy.img'/>
      <target dev='vda' bus='virtio'/></disk>
    <interface type='network'><source network='default'/><mac address='52:54:00:12:34:56'/>
      <model type='virtio'/></interface>
  </devices>
</domain>)";

}  // namespace

TEST_CASE("a domain's firmware, secure boot and TPM are read from its XML", "[xml_parse]") {
  auto parse = [](const std::string& os, const std::string& devices) {
    const std::string xml = "<domain type='kvm'><name>x</name><uuid>u</uuid>" + os + "<devices>" +
                            devices + "</devices></domain>";
    auto d = parse_domain_xml(xml, {});
    REQUIRE(d);
    return *d;
  };
  const auto bios = parse("<os><type machine='pc'>hvm</type></os>", "");
  CHECK(bios.firmware.empty());
  CHECK_FALSE(bios.tpm);
  const auto auto_efi = parse(
      "<os firmware='efi'><type machine='q35'>hvm</type><firmware><feature enabled='yes' "
      "name='secure-boot'/></firmware></os>",
      "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>");
  CHECK(auto_efi.firmware == "uefi");
  CHECK(auto_efi.secure_boot);
  CHECK(auto_efi.tpm);
  // As virt-install and older libvirt write it: the loader by path.
  const auto pflash = parse(
      "<os><type machine='q35'>hvm</type><loader readonly='yes' secure='yes' "
      "type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader></os>",
      "");
  CHECK(pflash.firmware == "uefi");
  CHECK(pflash.secure_boot);
}

TEST_CASE("a hand-made domain is imported from a live observe, renamed, and marked",
          "[session][adopt]") {
  const auto session = make_libvirt_connector()->connect(kHost, 5s);
  ensure_libvirt_ready();
  ConnectHandle side(virConnectOpen("test:///default"));
  REQUIRE(side);
  DomainHandle dom(virDomainDefineXML(side.get(), kHandMade));
  REQUIRE(dom);

  const ObservedHost host = make_libvirt_provider()->observe(kHost, 5s);
  REQUIRE(host.reachable);
  const std::string entry = import_entry(host, {"fest", "hv1", "legacy", "old-app"});
  INFO(entry);
  CHECK(entry.find("old-app:\n  adopt: legacy\n  host: hv1\n  cpus: 2\n  memory: 768MiB\n") !=
        std::string::npos);
  // libvirt's network "default" is not this file's: the NIC is written as its bridge.
  CHECK(entry.find("    - {bridge: virbr0, mac: \"52:54:00:12:34:56\"}") != std::string::npos);
  CHECK(entry.find("    - {path: /default-pool/legacy.img}") != std::string::npos);
  CHECK(entry.find("  running: false\n") != std::string::npos);

  session->rename_domain("legacy", "old-app");
  CHECK_FALSE(session->domain("legacy"));
  REQUIRE(session->domain("old-app"));
  Ownership mark{"fest", "vm.old-app", "ab12", vm_record_from_json(R"({"adopted":"legacy"})"),
                 true};
  session->set_domain_owner("old-app", mark);
  const auto marked = session->domain("old-app");
  REQUIRE(marked);
  REQUIRE(marked->owner);
  CHECK(marked->owner->spec->adopted == "legacy");
  CHECK(marked->vcpus == 2);  // nothing else of it changed
  CHECK(marked->nics.size() == 1);
  // Now it is kumo's: import refuses it.
  const ObservedHost again = make_libvirt_provider()->observe(kHost, 5s);
  CHECK_THROWS_WITH(import_entry(again, {"fest", "hv1", "old-app", ""}),
                    "domain \"old-app\" is this cluster's vm.old-app already");
  CHECK_THROWS_AS(session->rename_domain("nope", "x"), HostError);
}
