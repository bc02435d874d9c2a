// The XML builders, checked two ways: the parsers of xml_parse.h read back what was built (the
// fields kumo compares), and pugixml looks at the elements the parsers ignore.
#include "providers/libvirt/xml_build.h"

#include <catch2/catch.hpp>
#include <pugixml.hpp>

#include "providers/libvirt/xml_parse.h"
#include "providers/ownership.h"

using namespace kumo;
using namespace kumo::libvirt;

namespace {

pugi::xml_document load(const std::string& xml) {
  pugi::xml_document doc;
  const auto result = doc.load_string(xml.c_str());
  INFO(xml);
  REQUIRE(result);
  return doc;
}

std::string attr(const pugi::xml_node& node, const char* name) {
  return node.attribute(name).value();
}

NetworkSpec nat_network() {
  NetworkSpec spec;
  spec.name = "kumo_festival_front";
  spec.mode = "nat";
  spec.bridge = "kb-festival-front";
  spec.address = "10.20.0.1";
  spec.prefix = 24;
  spec.dhcp_start = "10.20.0.100";
  spec.dhcp_end = "10.20.0.199";
  spec.dhcp_hosts = {{"52:54:00:6b:3c:01", "10.20.0.10", "web-0"},
                     {"52:54:00:6b:3c:11", "10.20.0.11", "web-1"}};
  spec.domain = "festival.test";
  spec.mtu = 9000;
  return spec;
}

DomainSpec web_domain() {
  DomainSpec spec;
  spec.name = "web-0";
  spec.virt_type = "kvm";
  spec.vcpus = 2;
  spec.memory = 1ull << 30;
  spec.disks = {{"kumo_festival_web-0_root.qcow2", "qcow2", "vda", false, ""},
                {"kumo_festival_web-0_seed.iso", "raw", "vdb", true, ""}};
  spec.nics = {{"kumo_festival_front", "", "52:54:00:6b:3c:01", "", "", "virtio", 0},
               {"", "br0", "52:54:00:6b:3c:02", "", "", "virtio", 0}};
  spec.serial_log = "/var/lib/libvirt/images/kumo_festival_web-0_serial.log";
  spec.owner = {"festival", "vm.web-0", "9c1185a5",
                vm_record_from_json(R"({"cpus":2,"memory":1073741824,"image":"debian-12"})")};
  return spec;
}

}  // namespace

TEST_CASE("volume XML: name, capacity in bytes, sparse, format", "[xml_build]") {
  const std::string xml =
      volume_xml({"kumo_festival_web-0_data-logs.qcow2", 10ull << 30, "qcow2", "", ""});
  const auto volume = parse_volume_xml(xml);
  REQUIRE(volume);
  CHECK(volume->name == "kumo_festival_web-0_data-logs.qcow2");
  CHECK(volume->capacity == 10ull << 30);
  CHECK(volume->allocation == 0);
  CHECK(volume->format == "qcow2");
  CHECK(volume->backing_path == "");

  const auto doc = load(xml);
  CHECK(attr(doc.child("volume").child("capacity"), "unit") == "bytes");
  CHECK_FALSE(doc.child("volume").child("backingStore"));
}

TEST_CASE("volume XML of an overlay names its backing file and format", "[xml_build]") {
  const std::string xml =
      volume_xml({"kumo_festival_web-0_root.qcow2", 20ull << 30, "qcow2",
                  "/var/lib/libvirt/images/kumo-image_sha256-ab12.qcow2", "qcow2"});
  const auto volume = parse_volume_xml(xml);
  REQUIRE(volume);
  CHECK(volume->backing_path == "/var/lib/libvirt/images/kumo-image_sha256-ab12.qcow2");
  const auto doc = load(xml);
  CHECK(attr(doc.child("volume").child("backingStore").child("format"), "type") == "qcow2");
}

TEST_CASE("network XML (nat) reads back whole: bridge, address, DHCP, hosts, domain, MTU",
          "[xml_build]") {
  const auto spec = nat_network();
  const std::string xml = network_xml(spec);
  const auto network = parse_network_xml(xml);
  REQUIRE(network);
  CHECK(network->name == "kumo_festival_front");
  CHECK(network->forward_mode == "nat");
  CHECK(network->bridge == "kb-festival-front");
  CHECK(network->ip == "10.20.0.1");
  CHECK(network->prefix == 24);
  CHECK(network->dhcp_start == "10.20.0.100");
  CHECK(network->dhcp_end == "10.20.0.199");
  CHECK(network->dhcp_hosts ==
        std::vector<ObservedDhcpHost>{{"52:54:00:6b:3c:01", "10.20.0.10", "web-0"},
                                      {"52:54:00:6b:3c:11", "10.20.0.11", "web-1"}});
  CHECK(network->domain == "festival.test");
  CHECK(network->mtu == 9000);
  CHECK(network->owner == Ownership{"festival", "network.front", "", std::nullopt});

  const auto doc = load(xml);
  const auto root = doc.child("network");
  CHECK(attr(root.child("bridge"), "stp") == "on");
  CHECK(attr(root.child("bridge"), "delay") == "0");
  CHECK(attr(root.child("domain"), "localOnly") == "yes");
  // Each DHCP host resolves by its short name and inside the domain.
  std::vector<std::pair<std::string, std::vector<std::string>>> dns;
  for (auto host : root.child("dns").children("host")) {
    std::vector<std::string> names;
    for (auto name : host.children("hostname")) names.push_back(name.text().get());
    dns.emplace_back(attr(host, "ip"), names);
  }
  CHECK(dns == decltype(dns){{"10.20.0.10", {"web-0", "web-0.festival.test"}},
                             {"10.20.0.11", {"web-1", "web-1.festival.test"}}});
}

TEST_CASE("network XML without a domain gives DNS short names only, and no <domain>",
          "[xml_build]") {
  auto spec = nat_network();
  spec.domain = "";
  spec.mtu.reset();
  const std::string xml = network_xml(spec);
  const auto doc = load(xml);
  const auto root = doc.child("network");
  CHECK_FALSE(root.child("domain"));
  CHECK_FALSE(root.child("mtu"));
  const auto host = root.child("dns").child("host");
  CHECK(std::string(host.child("hostname").text().get()) == "web-0");
  CHECK_FALSE(host.child("hostname").next_sibling("hostname"));
  const auto network = parse_network_xml(xml);
  REQUIRE(network);
  CHECK(network->domain == "");
  CHECK_FALSE(network->mtu);
}

TEST_CASE("network XML modes: route forwards, isolated does not, no DHCP means no <dhcp>",
          "[xml_build]") {
  auto spec = nat_network();
  spec.mode = "route";
  CHECK(parse_network_xml(network_xml(spec))->forward_mode == "route");

  spec.mode = "isolated";
  spec.dhcp_start = spec.dhcp_end = "";
  spec.dhcp_hosts.clear();
  const std::string xml = network_xml(spec);
  const auto network = parse_network_xml(xml);
  REQUIRE(network);
  CHECK(network->forward_mode == "");
  CHECK(network->ip == "10.20.0.1");
  CHECK(network->dhcp_start == "");
  const auto doc = load(xml);
  CHECK_FALSE(doc.child("network").child("forward"));
  CHECK_FALSE(doc.child("network").child("dns"));
  CHECK_FALSE(doc.child("network").child("ip").child("dhcp"));
}

TEST_CASE("network XML (bridge) is only a forward onto the host's bridge", "[xml_build]") {
  NetworkSpec spec;
  spec.name = "kumo_festival_lan";
  spec.mode = "bridge";
  spec.bridge = "br0";
  spec.mtu = 1500;
  spec.domain = "ignored.test";
  const std::string xml = network_xml(spec);
  const auto network = parse_network_xml(xml);
  REQUIRE(network);
  CHECK(network->forward_mode == "bridge");
  CHECK(network->bridge == "br0");
  CHECK(network->ip == "");
  const auto doc = load(xml);
  const auto root = doc.child("network");
  CHECK_FALSE(root.child("bridge").attribute("stp"));
  CHECK_FALSE(root.child("mtu"));
  CHECK_FALSE(root.child("domain"));
  CHECK_FALSE(root.child("ip"));
}

TEST_CASE("domain XML reads back whole: owner, memory, vCPUs, disks, NICs", "[xml_build]") {
  const auto spec = web_domain();
  const std::string xml = domain_xml(spec, "kumo-images");

  const auto domain = parse_domain_xml(xml);
  REQUIRE(domain);
  CHECK(domain->name == "web-0");
  CHECK(domain->virt_type == "kvm");
  CHECK(domain->uuid == "");
  CHECK(domain->vcpus == 2);
  CHECK(domain->max_vcpus == 2);
  CHECK(domain->memory == 1ull << 30);
  CHECK(domain->max_memory == 1ull << 30);
  REQUIRE(domain->owner);
  CHECK(*domain->owner == spec.owner);
  CHECK(domain->disks ==
        std::vector<ObservedDisk>{
            {"vda", "disk", "kumo-images/kumo_festival_web-0_root.qcow2", "qcow2", false},
            {"vdb", "disk", "kumo-images/kumo_festival_web-0_seed.iso", "raw", true}});
  CHECK(domain->nics == std::vector<ObservedNic>{
                            {"kumo_festival_front", "network", "52:54:00:6b:3c:01", "virtio", ""},
                            {"br0", "bridge", "52:54:00:6b:3c:02", "virtio", ""}});

  // The disks name the pool given, resolved through the caller's lookup like any volume disk.
  const auto resolved = parse_domain_xml(xml, [](const std::string& pool, const std::string& v) {
    return pool == "kumo-images" ? "/srv/images/" + v : "";
  });
  CHECK(resolved->disks.at(0).path == "/srv/images/kumo_festival_web-0_root.qcow2");
}

TEST_CASE("domain XML (kvm): host-passthrough CPU, no TCG cache, devices as kumo needs them",
          "[xml_build]") {
  const auto doc = load(domain_xml(web_domain(), "default"));
  const auto root = doc.child("domain");
  CHECK(attr(root.child("memory"), "unit") == "b");
  CHECK(attr(root.child("vcpu"), "placement") == "static");
  CHECK(attr(root.child("os").child("type"), "arch") == "x86_64");
  CHECK(attr(root.child("os").child("type"), "machine") == "pc");
  CHECK(std::string(root.child("os").child("type").text().get()) == "hvm");
  CHECK(attr(root.child("os").child("boot"), "dev") == "hd");
  CHECK(root.child("features").child("acpi"));
  CHECK(root.child("features").child("apic"));
  CHECK_FALSE(root.child("features").child("tcg"));
  CHECK(attr(root.child("cpu"), "mode") == "host-passthrough");
  CHECK(attr(root.child("clock"), "offset") == "utc");
  CHECK(std::string(root.child("on_poweroff").text().get()) == "destroy");
  CHECK(std::string(root.child("on_reboot").text().get()) == "restart");
  CHECK(std::string(root.child("on_crash").text().get()) == "destroy");
  // One proper XML tree: the owner mark is an element of <metadata>, not escaped text.
  CHECK(attr(root.child("metadata").child("kumo:owner"), "xmlns:kumo") == kOwnerNamespace);

  const auto devices = root.child("devices");
  const auto disk = devices.child("disk");
  CHECK(attr(disk.child("driver"), "name") == "qemu");
  CHECK(attr(disk.child("source"), "pool") == "default");
  CHECK(attr(disk.child("target"), "bus") == "virtio");
  CHECK_FALSE(disk.child("readonly"));
  const auto serial = devices.child("serial");
  CHECK(attr(serial, "type") == "pty");
  CHECK(attr(serial.child("log"), "file") ==
        "/var/lib/libvirt/images/kumo_festival_web-0_serial.log");
  CHECK(attr(serial.child("log"), "append") == "off");
  CHECK(attr(serial.child("target"), "port") == "0");
  CHECK(attr(devices.child("console").child("target"), "type") == "serial");
  CHECK(attr(devices.child("channel").child("target"), "name") == "org.qemu.guest_agent.0");
  CHECK(std::string(devices.child("rng").child("backend").text().get()) == "/dev/urandom");
  CHECK(attr(devices.child("memballoon"), "model") == "virtio");
}

TEST_CASE("domain XML (qemu): TCG cache capped, no host CPU, no serial log when none is asked",
          "[xml_build]") {
  auto spec = web_domain();
  spec.virt_type = "qemu";
  spec.serial_log = "";
  const auto doc = load(domain_xml(spec, "default", "4f5d8a38-2c4b-4d4e-9a52-3f1b6f0f2a11"));
  const auto root = doc.child("domain");
  CHECK(attr(root, "type") == "qemu");
  CHECK(std::string(root.child("uuid").text().get()) == "4f5d8a38-2c4b-4d4e-9a52-3f1b6f0f2a11");
  const auto cache = root.child("features").child("tcg").child("tb-cache");
  CHECK(std::string(cache.text().get()) == "128");
  CHECK(attr(cache, "unit") == "MiB");
  CHECK_FALSE(root.child("cpu"));
  CHECK(root.child("devices").child("serial"));
  CHECK_FALSE(root.child("devices").child("serial").child("log"));
}

TEST_CASE("XML-special characters in values are escaped and read back unchanged", "[xml_build]") {
  const std::string nasty = "a<b>&c\"d'e";

  const std::string vxml = volume_xml({nasty, 1, "raw", "/x/" + nasty, "raw"});
  CHECK(vxml.find("a<b>") == std::string::npos);
  CHECK(vxml.find("&amp;") != std::string::npos);
  CHECK(parse_volume_xml(vxml)->name == nasty);
  CHECK(parse_volume_xml(vxml)->backing_path == "/x/" + nasty);

  auto net = nat_network();
  net.bridge = nasty;
  net.domain = nasty;
  net.dhcp_hosts = {{"52:54:00:00:00:01", "10.20.0.10", nasty}};
  const std::string nxml = network_xml(net);
  const auto network = parse_network_xml(nxml);
  REQUIRE(network);
  CHECK(network->bridge == nasty);
  CHECK(network->domain == nasty);
  CHECK(network->dhcp_hosts.at(0).name == nasty);

  auto dom = web_domain();
  dom.name = nasty;
  dom.disks.at(0).volume = nasty;
  dom.nics.at(0).network = nasty;
  dom.serial_log = "/logs/" + nasty;
  dom.owner.address = "vm." + nasty;
  // JSON inside <kumo:spec> that looks like markup.
  dom.owner.spec = VmRecord{};
  dom.owner.spec->group = "</kumo:spec><evil/>&amp;";
  const std::string dxml = domain_xml(dom, nasty);
  const auto domain = parse_domain_xml(dxml);
  REQUIRE(domain);
  CHECK(domain->name == nasty);
  CHECK(domain->disks.at(0).path == nasty + "/" + nasty);
  CHECK(domain->nics.at(0).network == nasty);
  CHECK(domain->owner == dom.owner);
  CHECK(attr(load(dxml).child("domain").child("devices").child("serial").child("log"), "file") ==
        "/logs/" + nasty);
}

TEST_CASE("disk XML for hot-plugging: a pool volume on virtio with its serial", "[xml_build]") {
  const std::string xml =
      disk_xml({"kumo_festival_api_data-logs.qcow2", "qcow2", "vdd", false, "logs"}, "default");
  const auto doc = load(xml);
  const auto disk = doc.child("disk");
  REQUIRE(disk);
  CHECK(attr(disk, "type") == "volume");
  CHECK(attr(disk, "device") == "disk");
  CHECK(attr(disk.child("source"), "pool") == "default");
  CHECK(attr(disk.child("source"), "volume") == "kumo_festival_api_data-logs.qcow2");
  CHECK(attr(disk.child("target"), "dev") == "vdd");
  CHECK(attr(disk.child("target"), "bus") == "virtio");
  CHECK(std::string(disk.child("serial").text().get()) == "logs");
  CHECK_FALSE(disk.child("readonly"));
  // No serial: no element (the root disk and the seed).
  const auto plain = load(disk_xml({"r.qcow2", "qcow2", "vda", false, ""}, "default"));
  CHECK_FALSE(plain.child("disk").child("serial"));
  // A name with markup is escaped, never spliced.
  const auto odd = load(disk_xml({"a'b<c>.qcow2", "qcow2", "vdb", false, "x&y"}, "default"));
  CHECK(attr(odd.child("disk").child("source"), "volume") == "a'b<c>.qcow2");
  CHECK(std::string(odd.child("disk").child("serial").text().get()) == "x&y");
}

TEST_CASE("a data disk serial is its name cut to what virtio-blk keeps", "[xml_build]") {
  CHECK(disk_serial("data") == "data");
  CHECK(disk_serial(std::string(63, 'a')) == std::string(20, 'a'));
}

TEST_CASE("migration XML: volume disks become the destination's files, nothing else changes",
          "[xml]") {
  const std::string live = R"(<domain type='qemu'>
  <name>db</name>
  <uuid>4b0c6a52-3f43-4a8e-9d2b-1d3c1a2b3c4d</uuid>
  <metadata><kumo:owner xmlns:kumo="urn:kumo:owner:1"><kumo:cluster>fest</kumo:cluster><kumo:address>vm.db</kumo:address><kumo:spec-hash>ab</kumo:spec-hash><kumo:ready>yes</kumo:ready></kumo:owner><other:x xmlns:other="urn:other">keep</other:x></metadata>
  <memory unit='KiB'>1048576</memory>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='default' volume='kumo_fest_db_root.qcow2' index='2'/>
      <backingStore type='file' index='3'><format type='qcow2'/><source file='/var/lib/libvirt/images/base'/></backingStore>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/srv/a/kumo_fest_db_data-data.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <serial type='file'><source path='/srv/a/kumo_fest_db_serial.log'/><target port='0'/></serial>
    <console type='file'><source path='/srv/a/kumo_fest_db_serial.log'/><target type='serial' port='0'/></console>
  </devices>
</domain>)";
  Ownership owner{"fest", "vm.db", "ab", std::nullopt, true};
  owner.moving_from = "hv1";
  const auto out = migration_xml(
      live, [](const std::string& v) { return "/srv/b/" + v; }, "/srv/a", "/srv/b", owner);
  REQUIRE(out);
  pugi::xml_document doc;
  REQUIRE(doc.load_string(out->c_str()));
  auto devices = doc.child("domain").child("devices");
  auto root = devices.child("disk");
  CHECK(std::string(root.attribute("type").value()) == "file");
  CHECK(std::string(root.child("source").attribute("file").value()) ==
        "/srv/b/kumo_fest_db_root.qcow2");
  CHECK_FALSE(root.child("source").attribute("volume"));
  CHECK_FALSE(root.child("backingStore"));
  // The guest's ABI stays: target and PCI address as they were.
  CHECK(std::string(root.child("address").attribute("slot").value()) == "0x04");
  CHECK(std::string(root.child("target").attribute("dev").value()) == "vda");
  auto data = root.next_sibling("disk");
  CHECK(std::string(data.child("source").attribute("file").value()) ==
        "/srv/b/kumo_fest_db_data-data.qcow2");
  CHECK(std::string(devices.child("serial").child("source").attribute("path").value()) ==
        "/srv/b/kumo_fest_db_serial.log");
  CHECK(std::string(devices.child("console").child("source").attribute("path").value()) ==
        "/srv/b/kumo_fest_db_serial.log");
  const auto parsed = parse_owner_from_domain_xml(*out);
  REQUIRE(parsed);
  CHECK(parsed->moving_from == "hv1");
  CHECK(parsed->ready);
  CHECK(out->find("<other:x xmlns:other=\"urn:other\">keep</other:x>") != std::string::npos);
  CHECK(out->find("urn:kumo:owner:1") == out->rfind("urn:kumo:owner:1"));  // one mark only

  // A volume the destination lacks is named.
  CHECK_THROWS_WITH(
      migration_xml(
          live, [](const std::string&) { return std::string(); }, "/srv/a", "/srv/b", owner),
      Catch::Contains("kumo_fest_db_root.qcow2"));
  CHECK_FALSE(migration_xml(
      "<domain", [](const std::string&) { return std::string("x"); }, "", "", owner));
}

TEST_CASE("a move's marks survive the metadata round trip", "[xml]") {
  Ownership o{"fest", "vm.db", "ab", std::nullopt, false};
  o.moving_from = "hv1";
  o.moved_to = "hv2";
  const std::string xml = "<domain><metadata>" + owner_metadata_xml(o) + "</metadata></domain>";
  const auto back = parse_owner_from_domain_xml(xml);
  REQUIRE(back);
  CHECK(*back == o);
}
