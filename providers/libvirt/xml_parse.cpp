#include "providers/libvirt/xml_parse.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <limits>

#include <pugixml.hpp>

#include "providers/libvirt/xml_build.h"
#include "providers/ownership.h"

namespace kumo::libvirt {
namespace {

std::optional<pugi::xml_node> load_root(pugi::xml_document& doc, std::string_view xml,
                                        const char* root_name) {
  if (!doc.load_buffer(xml.data(), xml.size())) return std::nullopt;
  const auto root = doc.child(root_name);
  if (!root || std::string_view(root.child("name").text().get()).empty()) return std::nullopt;
  return root;
}

std::string attr(pugi::xml_node node, const char* name, const char* fallback = "") {
  const auto a = node.attribute(name);
  return a ? a.value() : fallback;
}

std::string text(pugi::xml_node node, const char* child) {
  return node.child(child).text().get();
}

// The CPU features that decide how VMs run on a host (HostFacts::cpu_features).
bool is_virtualization_feature(std::string_view name) {
  return name == "vmx" || name == "svm" || name == "vmx-ept" || name == "npt" ||
         name == "hypervisor";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

template <typename Int>
std::optional<Int> parse_int(std::string_view s) {
  s = trim(s);
  Int value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> unit_scale(std::string_view unit) {
  std::string u(trim(unit));
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::tolower(c); });
  if (u == "b" || u == "bytes") return 1;
  constexpr std::string_view kPowers = "kmgtpe";
  const auto power = u.empty() ? std::string_view::npos : kPowers.find(u[0]);
  if (power == std::string_view::npos) return std::nullopt;
  const std::string rest = u.substr(1);
  std::uint64_t base = 0;
  if (rest.empty() || rest == "ib") base = 1024;
  if (rest == "b") base = 1000;
  if (base == 0) return std::nullopt;
  std::uint64_t scale = 1;
  for (std::size_t i = 0; i <= power; ++i) scale *= base;
  return scale;
}

// A <memory unit='KiB'>…</memory>-style element; 0 when absent or unreadable.
std::uint64_t element_bytes(pugi::xml_node node, std::string_view default_unit) {
  if (!node) return 0;
  return scaled_bytes(node.text().get(), node.attribute("unit").value(), default_unit).value_or(0);
}

// Whether a disk comes from a file, a block device, a pool volume..., its source is spelled
// differently; all become one path.
std::string disk_path(pugi::xml_node disk, const VolumePathLookup& lookup) {
  const auto source = disk.child("source");
  if (!source) return "";  // an empty cdrom drive
  const std::string type = attr(disk, "type", "file");
  if (type == "volume") {
    const std::string pool = attr(source, "pool"), volume = attr(source, "volume");
    std::string path = lookup ? lookup(pool, volume) : "";
    return path.empty() ? pool + "/" + volume : path;
  }
  if (type == "block") return attr(source, "dev");
  if (type == "dir") return attr(source, "dir");
  if (type == "network") return attr(source, "name");
  return attr(source, "file");
}

ObservedDisk parse_disk(pugi::xml_node disk, const VolumePathLookup& lookup) {
  ObservedDisk d;
  d.target = attr(disk.child("target"), "dev");
  d.device = attr(disk, "device", "disk");
  d.path = disk_path(disk, lookup);
  d.format = attr(disk.child("driver"), "type");
  d.readonly = static_cast<bool>(disk.child("readonly"));
  return d;
}

ObservedNic parse_nic(pugi::xml_node nic) {
  ObservedNic n;
  n.type = attr(nic, "type");
  const auto source = nic.child("source");
  if (n.type == "network") n.network = attr(source, "network");
  if (n.type == "bridge") n.network = attr(source, "bridge");
  if (n.type == "direct") {
    n.network = attr(source, "dev");
    n.mode = attr(source, "mode", "vepa");  // libvirt's default
  }
  n.mac = attr(nic.child("mac"), "address");
  n.model = attr(nic.child("model"), "type");
  return n;
}

void read_vcpus(pugi::xml_node vcpu, ObservedDomain& d) {
  if (!vcpu) return;
  d.max_vcpus = parse_int<int>(vcpu.text().get()).value_or(0);
  d.vcpus = parse_int<int>(attr(vcpu, "current")).value_or(d.max_vcpus);
}

// The network's IPv4 address (kumo networks are IPv4; an IPv6 <ip> may sit beside it).
pugi::xml_node ipv4_element(pugi::xml_node network) {
  for (auto ip : network.children("ip")) {
    const std::string family = attr(ip, "family", "ipv4");
    if (family == "ipv4") return ip;
  }
  return {};
}

void read_ip(pugi::xml_node ip, ObservedNetwork& n) {
  if (!ip) return;
  n.ip = attr(ip, "address");
  if (auto prefix = parse_int<int>(attr(ip, "prefix"))) {
    n.prefix = *prefix;
  } else if (auto from_mask = netmask_prefix(attr(ip, "netmask"))) {
    n.prefix = *from_mask;
  }
  const auto dhcp = ip.child("dhcp");
  n.dhcp_start = attr(dhcp.child("range"), "start");
  n.dhcp_end = attr(dhcp.child("range"), "end");
  for (auto host : dhcp.children("host")) {
    n.dhcp_hosts.push_back({attr(host, "mac"), attr(host, "ip"), attr(host, "name")});
  }
}

void read_dns(pugi::xml_node dns, ObservedNetwork& n) {
  for (auto host : dns.children("host")) {
    ObservedDnsHost h;
    h.ip = attr(host, "ip");
    for (auto name : host.children("hostname")) h.names.emplace_back(name.text().get());
    n.dns_hosts.push_back(std::move(h));
  }
}

}  // namespace

std::optional<std::uint64_t> scaled_bytes(std::string_view value, std::string_view unit,
                                          std::string_view default_unit) {
  const auto number = parse_int<std::uint64_t>(value);
  const auto scale = unit_scale(trim(unit).empty() ? default_unit : unit);
  if (!number || !scale) return std::nullopt;
  if (*number > std::numeric_limits<std::uint64_t>::max() / *scale) return std::nullopt;
  return *number * *scale;
}

std::optional<int> netmask_prefix(std::string_view netmask) {
  std::uint32_t mask = 0;
  std::string_view rest = netmask;
  for (int i = 0; i < 4; ++i) {
    const auto dot = i < 3 ? rest.find('.') : rest.size();
    if (dot == std::string_view::npos) return std::nullopt;
    const auto octet = parse_int<unsigned>(rest.substr(0, dot));
    if (!octet || *octet > 255) return std::nullopt;
    mask = (mask << 8) | *octet;
    rest = i < 3 ? rest.substr(dot + 1) : std::string_view{};
  }
  // Contiguous ones then zeros: the inverted mask is 2^k - 1.
  const std::uint32_t host_bits = ~mask;
  if ((host_bits & (host_bits + 1)) != 0) return std::nullopt;
  return std::popcount(mask);
}

std::optional<ObservedDomain> parse_domain_xml(std::string_view xml,
                                               const VolumePathLookup& lookup) {
  pugi::xml_document doc;
  const auto root = load_root(doc, xml, "domain");
  if (!root) return std::nullopt;
  ObservedDomain d;
  d.name = text(*root, "name");
  d.uuid = text(*root, "uuid");
  d.virt_type = attr(*root, "type");
  read_vcpus(root->child("vcpu"), d);
  d.max_memory = element_bytes(root->child("memory"), "KiB");
  const auto current = root->child("currentMemory");
  d.memory = current ? element_bytes(current, "KiB") : d.max_memory;
  for (auto disk : root->child("devices").children("disk")) {
    d.disks.push_back(parse_disk(disk, lookup));
  }
  for (auto nic : root->child("devices").children("interface")) d.nics.push_back(parse_nic(nic));
  // UEFI: asked for by name (firmware='efi'), or a pflash loader as older definitions have it.
  const auto os = root->child("os");
  const auto loader = os.child("loader");
  if (attr(os, "firmware") == "efi" || attr(loader, "type") == "pflash") d.firmware = "uefi";
  d.secure_boot = attr(loader, "secure") == "yes";
  for (auto f : os.child("firmware").children("feature"))
    if (attr(f, "name") == "secure-boot" && attr(f, "enabled") == "yes") d.secure_boot = true;
  d.tpm = static_cast<bool>(root->child("devices").child("tpm"));
  d.owner = parse_owner_from_domain_xml(std::string(xml));
  return d;
}

std::optional<ObservedNetwork> parse_network_xml(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load_root(doc, xml, "network");
  if (!root) return std::nullopt;
  ObservedNetwork n;
  n.name = text(*root, "name");
  n.uuid = text(*root, "uuid");
  // <forward/> without a mode is NAT, as libvirt reads it.
  if (const auto forward = root->child("forward")) n.forward_mode = attr(forward, "mode", "nat");
  n.bridge = attr(root->child("bridge"), "name");
  n.domain = attr(root->child("domain"), "name");
  if (const auto mtu = root->child("mtu")) n.mtu = parse_int<int>(attr(mtu, "size"));
  read_ip(ipv4_element(*root), n);
  read_dns(root->child("dns"), n);
  n.owner = network_owner(n.name);
  return n;
}

std::optional<ObservedPool> parse_pool_xml(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load_root(doc, xml, "pool");
  if (!root) return std::nullopt;
  ObservedPool p;
  p.name = text(*root, "name");
  p.type = attr(*root, "type");
  p.path = text(root->child("target"), "path");
  const auto source = root->child("source");
  for (auto device : source.children("device")) p.devices.push_back(attr(device, "path"));
  p.source_name = text(source, "name");
  const std::string product = attr(source.child("product"), "name");
  if (attr(source.child("vendor"), "name") == kPoolVendor &&
      product.rfind(kPoolProductPrefix, 0) == 0)
    p.owner_cluster = product.substr(std::string(kPoolProductPrefix).size());
  p.capacity = element_bytes(root->child("capacity"), "bytes");
  p.available = element_bytes(root->child("available"), "bytes");
  return p;
}

std::optional<std::string> parse_lock_secret_xml(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return std::nullopt;
  const auto root = doc.child("secret");
  if (!root) return std::nullopt;
  return text(root, "description");
}

std::optional<ObservedVolume> parse_volume_xml(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load_root(doc, xml, "volume");
  if (!root) return std::nullopt;
  ObservedVolume v;
  v.name = text(*root, "name");
  v.path = text(root->child("target"), "path");
  if (v.path.empty()) v.path = text(*root, "key");
  v.format = attr(root->child("target").child("format"), "type");
  v.capacity = element_bytes(root->child("capacity"), "bytes");
  v.allocation = element_bytes(root->child("allocation"), "bytes");
  v.backing_path = text(root->child("backingStore"), "path");
  v.owner = volume_owner(v.name);
  const auto stamps = root->child("target").child("timestamps");
  const std::string mtime = text(stamps, "mtime"), ctime = text(stamps, "ctime");
  if (!mtime.empty() && !ctime.empty()) v.changed = mtime + " " + ctime;
  return v;
}

std::optional<HostCapabilities> parse_capabilities_xml(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return std::nullopt;
  const auto root = doc.child("capabilities");
  if (!root) return std::nullopt;
  HostCapabilities caps;
  const auto cpu = root.child("host").child("cpu");
  caps.arch = text(cpu, "arch");
  caps.cpu_model = text(cpu, "model");
  for (auto feature : cpu.children("feature")) {
    const std::string name = attr(feature, "name");
    if (is_virtualization_feature(name) &&
        std::find(caps.cpu_features.begin(), caps.cpu_features.end(), name) ==
            caps.cpu_features.end())
      caps.cpu_features.push_back(name);
  }
  for (auto guest : root.children("guest")) {
    const auto arch = guest.child("arch");
    if (caps.arch.empty() || attr(arch, "name") != caps.arch) continue;
    for (auto domain : arch.children("domain"))
      caps.kvm = caps.kvm || attr(domain, "type") == "kvm";
  }
  return caps;
}

std::optional<DomainCapabilities> parse_domain_capabilities_xml(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return std::nullopt;
  const auto root = doc.child("domainCapabilities");
  if (!root) return std::nullopt;
  DomainCapabilities caps;
  caps.virt_type = text(root, "domain");
  for (auto mode : root.child("cpu").children("mode")) {
    if (attr(mode, "name") != "host-model" || attr(mode, "supported") != "yes") continue;
    caps.nested = false;
    for (auto feature : mode.children("feature")) {
      const std::string name = attr(feature, "name");
      const std::string policy = attr(feature, "policy", "require");
      if ((name == "vmx" || name == "svm") && policy != "disable" && policy != "forbid")
        caps.nested = true;
    }
  }
  auto offers = [](pugi::xml_node node, const char* enum_name, const char* value) {
    for (auto e : node.children("enum")) {
      if (attr(e, "name") != enum_name) continue;
      for (auto v : e.children("value"))
        if (std::string_view(v.text().get()) == value) return true;
    }
    return false;
  };
  const auto os = root.child("os");
  if (attr(os, "supported") == "yes") {
    caps.uefi = offers(os, "firmware", "efi");
    const auto loader = os.child("loader");
    caps.secure_boot =
        caps.uefi && attr(loader, "supported") == "yes" && offers(loader, "secure", "yes");
  }
  const auto tpm = root.child("devices").child("tpm");
  caps.tpm_emulator = attr(tpm, "supported") == "yes" && offers(tpm, "backendModel", "emulator");
  return caps;
}

}  // namespace kumo::libvirt
