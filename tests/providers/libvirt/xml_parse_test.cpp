#include "providers/libvirt/xml_parse.h"

#include <catch2/catch.hpp>

#include "observed_json.h"

using namespace kumo;
using namespace kumo::libvirt;
using kumo::testing::read_data;
using kumo::testing::render;

namespace {

// The sample and its golden file: tests/data/libvirt/<name>.xml and <name>.json.
template <typename Parsed>
void check_golden(const std::string& name, const Parsed& parsed) {
  REQUIRE(parsed.has_value());
  const auto expected = nlohmann::json::parse(read_data(name + ".json"));
  INFO(name << ".json expected:\n" << expected.dump(2) << "\nparsed:\n" << render(*parsed).dump(2));
  CHECK(render(*parsed) == expected);
}

std::string images_lookup(const std::string& pool, const std::string& volume) {
  return pool == "default" ? "/var/lib/libvirt/images/" + volume : "";
}

}  // namespace

TEST_CASE("domain XML from a running kvm guest parses to the golden observed domain", "[xml]") {
  const auto xml = read_data("domain_kvm_running.xml");
  check_golden("domain_kvm_running", parse_domain_xml(xml, images_lookup));
}

TEST_CASE("domain XML without optional elements falls back to libvirt's defaults", "[xml]") {
  // No currentMemory (= memory), no current vcpus (= max), an empty cdrom, a block device,
  // another tool's metadata (not ownership).
  check_golden("domain_minimal", parse_domain_xml(read_data("domain_minimal.xml")));
  check_golden("domain_memory_units", parse_domain_xml(read_data("domain_memory_units.xml")));
}

TEST_CASE("a volume disk whose pool is unknown reads as pool/volume", "[xml]") {
  const auto domain = parse_domain_xml(read_data("domain_kvm_running.xml"));
  REQUIRE(domain);
  CHECK(domain->disks.at(1).path == "default/kumo_festival_web-0_seed.iso");
}

TEST_CASE("network XML parses to the golden observed network", "[xml]") {
  // Netmask → prefix, NAT with no domain or MTU, unowned.
  check_golden("network_default", parse_network_xml(read_data("network_default.xml")));
  // Prefix, DHCP hosts, domain, MTU, an IPv6 address beside the IPv4 one, owned by its name.
  check_golden("network_kumo", parse_network_xml(read_data("network_kumo.xml")));
  // No <forward> (isolated) and no <ip>.
  check_golden("network_isolated", parse_network_xml(read_data("network_isolated.xml")));
}

TEST_CASE("pool and volume XML parse to the golden observed objects", "[xml]") {
  check_golden("pool_dir", parse_pool_xml(read_data("pool_dir.xml")));
  check_golden("volume_root", parse_volume_xml(read_data("volume_root.xml")));
  check_golden("volume_image", parse_volume_xml(read_data("volume_image.xml")));
  check_golden("volume_unowned", parse_volume_xml(read_data("volume_unowned.xml")));
}

TEST_CASE("capabilities give the host arch and whether kvm is offered for it", "[xml]") {
  const auto kvm = parse_capabilities_xml(read_data("capabilities_x86_64_kvm.xml"));
  REQUIRE(kvm);
  CHECK(kvm->arch == "x86_64");
  CHECK(kvm->kvm);

  const auto tcg = parse_capabilities_xml(read_data("capabilities_x86_64_no_kvm.xml"));
  REQUIRE(tcg);
  CHECK(tcg->arch == "x86_64");
  CHECK_FALSE(tcg->kvm);

  // kvm offered for another arch only does not make this a kvm host.
  const auto other = parse_capabilities_xml(
      "<capabilities><host><cpu><arch>x86_64</arch></cpu></host><guest><arch name='i686'>"
      "<domain type='kvm'/></arch></guest></capabilities>");
  REQUIRE(other);
  CHECK_FALSE(other->kvm);
}

TEST_CASE("capabilities give the host CPU's model and the features that decide how VMs run",
          "[xml]") {
  const auto intel = parse_capabilities_xml(read_data("capabilities_x86_64_kvm.xml"));
  REQUIRE(intel);
  CHECK(intel->cpu_model == "Skylake-Client-noTSX-IBRS");
  CHECK(intel->cpu_features == std::vector<std::string>{"vmx"});

  const auto tcg = parse_capabilities_xml(read_data("capabilities_x86_64_no_kvm.xml"));
  REQUIRE(tcg);
  CHECK(tcg->cpu_model == "qemu64");
  CHECK(tcg->cpu_features.empty());

  // Only the features that matter, in libvirt's order, once each; none named: no model.
  const auto amd = parse_capabilities_xml(
      "<capabilities><host><cpu><arch>x86_64</arch><model>EPYC-Rome</model>"
      "<feature name='x2apic'/><feature name='svm'/><feature name='npt'/>"
      "<feature name='hypervisor'/><feature name='svm'/><feature name='nrip-save'/></cpu></host>"
      "</capabilities>");
  REQUIRE(amd);
  CHECK(amd->cpu_model == "EPYC-Rome");
  CHECK(amd->cpu_features == std::vector<std::string>{"svm", "npt", "hypervisor"});
  const auto bare = parse_capabilities_xml(
      "<capabilities><host><cpu><arch>i686</arch><features><pae/></features></cpu></host>"
      "</capabilities>");
  REQUIRE(bare);
  CHECK(bare->cpu_model.empty());
  CHECK(bare->cpu_features.empty());
}

TEST_CASE("KVM's domain capabilities tell nested virtualization by the host-model CPU's vmx/svm",
          "[xml]") {
  const auto nested = parse_domain_capabilities_xml(read_data("domain_capabilities_kvm.xml"));
  REQUIRE(nested);
  CHECK(nested->virt_type == "kvm");
  CHECK(nested->nested == true);

  auto with_host_model = [](const std::string& mode) {
    return parse_domain_capabilities_xml("<domainCapabilities><domain>kvm</domain><cpu>" + mode +
                                         "</cpu></domainCapabilities>");
  };
  const auto plain = with_host_model(
      "<mode name='host-model' supported='yes'><model>EPYC</model>"
      "<feature policy='require' name='x2apic'/></mode>");
  REQUIRE(plain);
  CHECK(plain->nested == false);
  const auto disabled = with_host_model(
      "<mode name='host-model' supported='yes'><feature policy='disable' name='svm'/></mode>");
  REQUIRE(disabled);
  CHECK(disabled->nested == false);
  // No usable host-model: libvirt does not tell.
  const auto unsupported = with_host_model(
      "<mode name='host-passthrough' supported='yes'/><mode name='host-model' supported='no'/>");
  REQUIRE(unsupported);
  CHECK_FALSE(unsupported->nested.has_value());
}

TEST_CASE("documents that are not what they claim are rejected", "[xml]") {
  CHECK_FALSE(parse_domain_xml("not xml"));
  CHECK_FALSE(parse_domain_xml("<network><name>x</name></network>"));
  CHECK_FALSE(parse_domain_xml("<domain type='kvm'></domain>"));  // no name
  CHECK_FALSE(parse_network_xml(""));
  CHECK_FALSE(parse_pool_xml("<pool type='dir'/>"));
  CHECK_FALSE(parse_volume_xml("<volume><name>x</name>"));  // truncated
  CHECK_FALSE(parse_capabilities_xml("<domain/>"));
  CHECK_FALSE(parse_domain_capabilities_xml("<capabilities/>"));
  CHECK_FALSE(parse_domain_capabilities_xml("<domainCapabilities>"));
}

TEST_CASE("scaled integers convert every libvirt unit to bytes", "[xml]") {
  CHECK(scaled_bytes("4096", "", "bytes") == 4096u);
  CHECK(scaled_bytes("4096", "b", "KiB") == 4096u);
  CHECK(scaled_bytes("4096", "bytes", "KiB") == 4096u);
  CHECK(scaled_bytes("2", "", "KiB") == 2048u);
  CHECK(scaled_bytes("2", "k", "bytes") == 2048u);
  CHECK(scaled_bytes("2", "KiB", "bytes") == 2048u);
  CHECK(scaled_bytes("2", "KB", "bytes") == 2000u);
  CHECK(scaled_bytes("3", "MiB", "bytes") == 3u * 1024 * 1024);
  CHECK(scaled_bytes("3", "M", "bytes") == 3u * 1024 * 1024);
  CHECK(scaled_bytes("3", "MB", "bytes") == 3'000'000u);
  CHECK(scaled_bytes("5", "GiB", "bytes") == 5ull << 30);
  CHECK(scaled_bytes("5", "g", "bytes") == 5ull << 30);
  CHECK(scaled_bytes("5", "GB", "bytes") == 5'000'000'000ull);
  CHECK(scaled_bytes("1", "TiB", "bytes") == 1ull << 40);
  CHECK(scaled_bytes("1", "PiB", "bytes") == 1ull << 50);
  CHECK(scaled_bytes("8", "EiB", "bytes") == 8ull << 60);
  CHECK(scaled_bytes(" 12 ", " kib ", "bytes") == 12u * 1024);  // whitespace, any case

  CHECK_FALSE(scaled_bytes("16", "EiB", "bytes"));  // overflows 64 bits
  CHECK_FALSE(scaled_bytes("1", "parsecs", "bytes"));
  CHECK_FALSE(scaled_bytes("1", "KiBB", "bytes"));
  CHECK_FALSE(scaled_bytes("-1", "KiB", "bytes"));
  CHECK_FALSE(scaled_bytes("1.5", "GiB", "bytes"));
  CHECK_FALSE(scaled_bytes("", "KiB", "bytes"));
}

TEST_CASE("netmasks convert to prefix lengths", "[xml]") {
  CHECK(netmask_prefix("255.255.255.0") == 24);
  CHECK(netmask_prefix("255.255.0.0") == 16);
  CHECK(netmask_prefix("255.255.255.252") == 30);
  CHECK(netmask_prefix("255.255.255.255") == 32);
  CHECK(netmask_prefix("0.0.0.0") == 0);
  CHECK_FALSE(netmask_prefix("255.0.255.0"));  // not contiguous
  CHECK_FALSE(netmask_prefix("255.255.255"));
  CHECK_FALSE(netmask_prefix("255.255.255.0.0"));
  CHECK_FALSE(netmask_prefix("255.255.256.0"));
  CHECK_FALSE(netmask_prefix(""));
}
