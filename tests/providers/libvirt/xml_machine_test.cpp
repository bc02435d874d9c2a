// The machine in domain XML: BIOS on pc, UEFI on q35 (firmware chosen by libvirt from the
// features asked for), secure boot with SMM, a per-VM NVRAM file, a TPM 2.0 on swtpm. Golden
// files hold the whole XML (tests/golden/xml/); the checks below say what each part is for.
// Also: reading what a host offers those machines from libvirt's domain capabilities.
#include <catch2/catch.hpp>
#include <pugixml.hpp>

#include "providers/libvirt/xml_build.h"
#include "providers/libvirt/xml_parse.h"
#include "providers/ownership.h"
#include "tests/golden.h"

using namespace kumo;
using namespace kumo::libvirt;

namespace {

DomainSpec machine_domain() {
  DomainSpec spec;
  spec.name = "win-0";
  spec.virt_type = "qemu";
  spec.vcpus = 2;
  spec.memory = 2ull << 30;
  spec.max_vcpus = 4;
  spec.max_memory = 4ull << 30;
  spec.disks = {{"kumo_fest_win-0_root.qcow2", "qcow2", "vda", false, ""},
                {"kumo_fest_win-0_seed.iso", "raw", "vdb", true, ""}};
  spec.nics = {{"kumo_fest_front", "", "52:54:00:6b:3c:01", "", "", "virtio", 0}};
  spec.serial_log = "/var/lib/libvirt/images/kumo_fest_win-0_serial.log";
  spec.owner = {"fest", "vm.win-0", "9c1185a5", std::nullopt};
  return spec;
}

std::string attr(const pugi::xml_node& node, const char* name) {
  return node.attribute(name).value();
}

pugi::xml_document load(const std::string& xml) {
  pugi::xml_document doc;
  REQUIRE(doc.load_string(xml.c_str()));
  return doc;
}

}  // namespace

TEST_CASE("domain XML golden: BIOS is SeaBIOS on pc, nothing of UEFI", "[xml_build][golden]") {
  const std::string xml = domain_xml(machine_domain(), "default");
  test::check_golden("xml/domain_bios.xml", xml);
  const auto doc = load(xml);
  const auto os = doc.child("domain").child("os");
  CHECK(attr(os.child("type"), "machine") == "pc");
  CHECK_FALSE(os.attribute("firmware"));
  CHECK_FALSE(os.child("nvram"));
  CHECK_FALSE(doc.child("domain").child("features").child("smm"));
  CHECK_FALSE(doc.child("domain").child("devices").child("tpm"));
  CHECK_FALSE(doc.child("domain").child("devices").child("controller"));
}

TEST_CASE("domain XML golden: UEFI without secure boot asks for a build without it",
          "[xml_build][golden]") {
  auto spec = machine_domain();
  spec.firmware = "efi";
  spec.nvram = "/var/lib/libvirt/images/kumo_fest_win-0_nvram.fd";
  const std::string xml = domain_xml(spec, "default");
  test::check_golden("xml/domain_uefi.xml", xml);
  const auto doc = load(xml);
  const auto os = doc.child("domain").child("os");
  CHECK(attr(os, "firmware") == "efi");
  CHECK(attr(os.child("type"), "machine") == "q35");
  for (auto f : os.child("firmware").children("feature")) CHECK(attr(f, "enabled") == "no");
  CHECK_FALSE(os.child("loader"));
  CHECK(std::string(os.child("nvram").text().get()) == spec.nvram);
  CHECK_FALSE(doc.child("domain").child("features").child("smm"));
  // Root ports: two disks + one NIC + four for what libvirt adds + four spare for hot-plug.
  // libvirt numbers controllers without an index in order: q35's index 0 must be the root.
  int ports = 0;
  const auto first = doc.child("domain").child("devices").child("controller");
  CHECK(attr(first, "model") == "pcie-root");
  CHECK(attr(first, "index") == "0");
  for (auto c : doc.child("domain").child("devices").children("controller")) {
    if (c == first) continue;
    CHECK(attr(c, "model") == "pcie-root-port");
    ++ports;
  }
  CHECK(ports == 11);
}

TEST_CASE("domain XML golden: secure boot (keys enrolled, SMM on) and a TPM 2.0 on swtpm",
          "[xml_build][golden]") {
  auto spec = machine_domain();
  spec.firmware = "efi";
  spec.secure_boot = true;
  spec.tpm = true;
  spec.nvram = "/var/lib/libvirt/images/kumo_fest_win-0_nvram.fd";
  const std::string xml = domain_xml(spec, "default");
  test::check_golden("xml/domain_uefi_secure_boot_tpm.xml", xml);
  const auto doc = load(xml);
  const auto os = doc.child("domain").child("os");
  std::map<std::string, std::string> features;
  for (auto f : os.child("firmware").children("feature"))
    features[attr(f, "name")] = attr(f, "enabled");
  CHECK(features ==
        std::map<std::string, std::string>{{"enrolled-keys", "yes"}, {"secure-boot", "yes"}});
  CHECK(attr(os.child("loader"), "secure") == "yes");
  CHECK(attr(doc.child("domain").child("features").child("smm"), "state") == "on");
  const auto tpm = doc.child("domain").child("devices").child("tpm");
  CHECK(attr(tpm, "model") == "tpm-crb");
  CHECK(attr(tpm.child("backend"), "type") == "emulator");
  CHECK(attr(tpm.child("backend"), "version") == "2.0");
}

TEST_CASE("domain XML: UEFI without a pool directory leaves the NVRAM to libvirt", "[xml_build]") {
  auto spec = machine_domain();
  spec.firmware = "efi";
  const auto doc = load(domain_xml(spec, "default"));
  CHECK_FALSE(doc.child("domain").child("os").child("nvram"));
}

TEST_CASE("domain capabilities: UEFI, secure boot and the TPM emulator are read", "[xml_parse]") {
  // As libvirt 9.0 answers for q35 with Debian's ovmf and swtpm installed (trimmed).
  const std::string full = R"(<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path><domain>qemu</domain><machine>pc-q35-7.2</machine>
  <arch>x86_64</arch>
  <os supported='yes'>
    <enum name='firmware'><value>efi</value></enum>
    <loader supported='yes'>
      <value>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</value>
      <enum name='type'><value>rom</value><value>pflash</value></enum>
      <enum name='readonly'><value>yes</value><value>no</value></enum>
      <enum name='secure'><value>yes</value><value>no</value></enum>
    </loader>
  </os>
  <devices>
    <tpm supported='yes'>
      <enum name='model'><value>tpm-tis</value><value>tpm-crb</value></enum>
      <enum name='backendModel'><value>passthrough</value><value>emulator</value></enum>
    </tpm>
  </devices>
</domainCapabilities>)";
  const auto caps = parse_domain_capabilities_xml(full);
  REQUIRE(caps);
  CHECK(caps->uefi);
  CHECK(caps->secure_boot);
  CHECK(caps->tpm_emulator);

  // Neither ovmf nor swtpm: no efi firmware, no loader values, only the passthrough TPM.
  const std::string bare = R"(<domainCapabilities><domain>qemu</domain>
  <os supported='yes'><enum name='firmware'/><loader supported='yes'>
    <enum name='secure'><value>no</value></enum></loader></os>
  <devices><tpm supported='yes'><enum name='backendModel'><value>passthrough</value></enum>
  </tpm></devices></domainCapabilities>)";
  const auto none = parse_domain_capabilities_xml(bare);
  REQUIRE(none);
  CHECK_FALSE(none->uefi);
  CHECK_FALSE(none->secure_boot);
  CHECK_FALSE(none->tpm_emulator);
}

TEST_CASE("domain XML golden: bridge, direct (macvtap) and multiqueue NICs, disk cache modes",
          "[xml_build][golden]") {
  auto spec = machine_domain();
  spec.nics = {{"kumo_fest_front", "", "52:54:00:6b:3c:01", "", "", "virtio", 4},
               {"", "br0", "52:54:00:6b:3c:02", "", "", "virtio", 0},
               {"", "", "52:54:00:6b:3c:03", "eth1", "private", "e1000e", 0}};
  spec.disks[0].cache = "writeback";
  const std::string xml = domain_xml(spec, "default");
  test::check_golden("xml/domain_nics_cache.xml", xml);
  const auto doc = load(xml);
  std::vector<pugi::xml_node> nics;
  for (auto n : doc.child("domain").child("devices").children("interface")) nics.push_back(n);
  REQUIRE(nics.size() == 3);
  CHECK(attr(nics[0].child("driver"), "queues") == "4");
  CHECK(attr(nics[1], "type") == "bridge");
  CHECK(attr(nics[1].child("source"), "bridge") == "br0");
  CHECK_FALSE(nics[1].child("driver"));
  CHECK(attr(nics[2], "type") == "direct");
  CHECK(attr(nics[2].child("source"), "dev") == "eth1");
  CHECK(attr(nics[2].child("source"), "mode") == "private");
  CHECK(attr(nics[2].child("model"), "type") == "e1000e");
  std::vector<pugi::xml_node> disks;
  for (auto d : doc.child("domain").child("devices").children("disk")) disks.push_back(d);
  REQUIRE(disks.size() == 2);
  // writeback cannot use native AIO; the overlay is trimmed; the read-only seed is not.
  CHECK(attr(disks[0].child("driver"), "cache") == "writeback");
  CHECK(attr(disks[0].child("driver"), "io") == "threads");
  CHECK(attr(disks[0].child("driver"), "discard") == "unmap");
  CHECK(attr(disks[1].child("driver"), "cache") == "none");
  CHECK(attr(disks[1].child("driver"), "io") == "native");
  CHECK_FALSE(disks[1].child("driver").attribute("discard"));
}

TEST_CASE("migration XML: a UEFI VM's NVRAM file is the destination's, in its pool directory",
          "[xml]") {
  const std::string live = R"(<domain type='qemu'><name>win</name>
  <os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/srv/a/kumo_fest_win_nvram.fd</nvram>
  </os><devices/></domain>)";
  const auto out = migration_xml(
      live, [](const std::string& v) { return "/srv/b/" + v; }, "/srv/a", "/srv/b",
      Ownership{"fest", "vm.win", "ab", std::nullopt, true});
  REQUIRE(out);
  const auto doc = load(*out);
  const auto os = doc.child("domain").child("os");
  CHECK(std::string(os.child("nvram").text().get()) == "/srv/b/kumo_fest_win_nvram.fd");
  // The firmware build and its template stay what the guest runs with.
  CHECK(attr(os.child("nvram"), "template") == "/usr/share/OVMF/OVMF_VARS_4M.ms.fd");
  CHECK(std::string(os.child("loader").text().get()) == "/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
}
