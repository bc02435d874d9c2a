#include "providers/libvirt/xml_build.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include <pugixml.hpp>

#include "providers/ownership.h"

namespace kumo::libvirt {
namespace {

pugi::xml_node add(pugi::xml_node parent, const char* name) {
  return parent.append_child(name);
}

pugi::xml_node add_text(pugi::xml_node parent, const char* name, const std::string& text) {
  auto node = parent.append_child(name);
  node.text() = text.c_str();
  return node;
}

void set(pugi::xml_node node, const char* name, const std::string& value) {
  node.append_attribute(name) = value.c_str();
}

std::string render(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration);
  return out.str();
}

void add_dns_host(pugi::xml_node parent, const NetworkDnsHost& host) {
  auto entry = add(parent, "host");
  set(entry, "ip", host.ip);
  for (const auto& name : host.names) add_text(entry, "hostname", name);
}

void add_dhcp_host(pugi::xml_node parent, const NetworkDhcpHost& host) {
  auto entry = add(parent, "host");
  set(entry, "mac", host.mac);
  if (!host.ip.empty()) set(entry, "ip", host.ip);
  if (!host.name.empty()) set(entry, "name", host.name);
}

void add_dns(pugi::xml_node network, const NetworkSpec& spec) {
  const auto entries = dns_entries(spec);
  if (entries.empty()) return;
  auto dns = add(network, "dns");
  for (const auto& host : entries) add_dns_host(dns, host);
}

void add_ip(pugi::xml_node network, const NetworkSpec& spec) {
  if (spec.address.empty()) return;
  auto ip = add(network, "ip");
  set(ip, "address", spec.address);
  set(ip, "prefix", std::to_string(spec.prefix));
  const bool range = !spec.dhcp_start.empty() && !spec.dhcp_end.empty();
  if (!range && spec.dhcp_hosts.empty()) return;
  auto dhcp = add(ip, "dhcp");
  if (range) {
    auto r = add(dhcp, "range");
    set(r, "start", spec.dhcp_start);
    set(r, "end", spec.dhcp_end);
  }
  for (const auto& host : spec.dhcp_hosts) add_dhcp_host(dhcp, host);
}

void add_owner(pugi::xml_node domain, const Ownership& owner) {
  pugi::xml_document mark;
  const std::string xml = owner_metadata_xml(owner);
  mark.load_buffer(xml.data(), xml.size());
  add(domain, "metadata").append_copy(mark.document_element());
}

void add_disk(pugi::xml_node devices, const DomainDisk& disk, const std::string& pool) {
  auto node = add(devices, "disk");
  set(node, "type", "volume");
  set(node, "device", "disk");
  auto driver = add(node, "driver");
  set(driver, "name", "qemu");
  set(driver, "type", disk.format);
  // No host page cache by default: the guest caches already, and O_DIRECT keeps host memory for
  // guests and writes honest. Native AIO needs O_DIRECT (none, directsync); otherwise threads.
  const std::string cache = disk.cache.empty() ? "none" : disk.cache;
  set(driver, "cache", cache);
  set(driver, "io", cache == "none" || cache == "directsync" ? "native" : "threads");
  // A guest's TRIM/discard frees the overlay's clusters on the host.
  if (disk.format == "qcow2" && !disk.readonly) set(driver, "discard", "unmap");
  auto source = add(node, "source");
  set(source, "pool", disk.pool.empty() ? pool : disk.pool);
  set(source, "volume", disk.volume);
  auto target = add(node, "target");
  set(target, "dev", disk.target);
  set(target, "bus", "virtio");
  if (disk.readonly) add(node, "readonly");
  if (!disk.serial.empty()) add(node, "serial").text().set(disk.serial.c_str());
}

void add_nic(pugi::xml_node devices, const DomainNic& nic) {
  auto node = add(devices, "interface");
  if (!nic.network.empty()) {
    set(node, "type", "network");
    set(add(node, "source"), "network", nic.network);
  } else if (!nic.direct.empty()) {
    set(node, "type", "direct");  // macvtap on the host's interface
    auto source = add(node, "source");
    set(source, "dev", nic.direct);
    set(source, "mode", nic.mode.empty() ? "bridge" : nic.mode);
  } else {
    set(node, "type", "bridge");
    set(add(node, "source"), "bridge", nic.bridge);
  }
  set(add(node, "mac"), "address", nic.mac);
  set(add(node, "model"), "type", nic.model.empty() ? "virtio" : nic.model);
  if (nic.queues > 1 && (nic.model.empty() || nic.model == "virtio"))
    set(add(node, "driver"), "queues", std::to_string(nic.queues));
}

void add_console(pugi::xml_node devices, const std::string& serial_log) {
  auto serial = add(devices, "serial");
  set(serial, "type", "pty");
  if (!serial_log.empty()) {
    auto log = add(serial, "log");
    set(log, "file", serial_log);
    set(log, "append", "off");
  }
  set(add(serial, "target"), "port", "0");

  auto console = add(devices, "console");
  set(console, "type", "pty");
  auto target = add(console, "target");
  set(target, "type", "serial");
  set(target, "port", "0");
}

// <os>: BIOS on the pc machine, or UEFI on q35 with the firmware libvirt picks from the
// host's firmware descriptors by the features asked for (secure boot with the standard keys
// enrolled, or neither).
void add_os(pugi::xml_node domain, const DomainSpec& spec) {
  auto os = add(domain, "os");
  const bool efi = spec.firmware == "efi";
  if (efi) set(os, "firmware", "efi");
  auto type = add_text(os, "type", "hvm");
  set(type, "arch", "x86_64");
  set(type, "machine", efi ? "q35" : "pc");
  if (efi) {
    auto firmware = add(os, "firmware");
    for (const char* name : {"enrolled-keys", "secure-boot"}) {
      auto feature = add(firmware, "feature");
      set(feature, "enabled", spec.secure_boot ? "yes" : "no");
      set(feature, "name", name);
    }
    if (spec.secure_boot) set(add(os, "loader"), "secure", "yes");
    if (!spec.nvram.empty()) add_text(os, "nvram", spec.nvram);
  }
  set(add(os, "boot"), "dev", "hd");
}

// q35 plugs devices into PCIe root ports, one each, and hot-plugs only into a free one: enough
// for every device libvirt adds (disks, NICs, the agent's serial, rng, balloon, USB) and four
// spare for data disks plugged while the VM runs.
void add_root_ports(pugi::xml_node devices, const DomainSpec& spec) {
  // The root complex first: controllers without an index are numbered in order, and q35's index 0
  // must be pcie-root.
  auto root = add(devices, "controller");
  set(root, "type", "pci");
  set(root, "index", "0");
  set(root, "model", "pcie-root");
  const std::size_t ports = spec.disks.size() + spec.nics.size() + 4 + 4;
  for (std::size_t i = 0; i < ports; ++i) {
    auto controller = add(devices, "controller");
    set(controller, "type", "pci");
    set(controller, "model", "pcie-root-port");
  }
}

}  // namespace

std::string volume_xml(const VolumeSpec& spec, const std::string& mode) {
  pugi::xml_document doc;
  auto volume = add(doc, "volume");
  add_text(volume, "name", spec.name);
  set(add_text(volume, "capacity", std::to_string(spec.capacity)), "unit", "bytes");
  set(add_text(volume, "allocation", "0"), "unit", "bytes");
  auto target = add(volume, "target");
  set(add(target, "format"), "type", spec.format);
  if (!mode.empty()) add_text(add(target, "permissions"), "mode", mode);
  if (!spec.backing_path.empty()) {
    auto backing = add(volume, "backingStore");
    add_text(backing, "path", spec.backing_path);
    if (!spec.backing_format.empty()) set(add(backing, "format"), "type", spec.backing_format);
  }
  return render(doc);
}

std::string lock_secret_xml(const std::string& usage, const std::string& description) {
  pugi::xml_document doc;
  auto secret = add(doc, "secret");
  set(secret, "ephemeral", "no");
  set(secret, "private", "yes");
  add_text(secret, "description", description);
  auto use = add(secret, "usage");
  set(use, "type", "volume");
  add_text(use, "volume", usage);
  return render(doc);
}

std::string pool_xml(const PoolSpec& spec) {
  pugi::xml_document doc;
  auto pool = add(doc, "pool");
  set(pool, "type", spec.type);
  add_text(pool, "name", spec.name);
  auto source = add(pool, "source");
  for (const auto& device : spec.devices) set(add(source, "device"), "path", device);
  if (spec.type == "logical") {
    add_text(source, "name", spec.name);
    set(add(source, "format"), "type", "lvm2");
  }
  set(add(source, "vendor"), "name", kPoolVendor);
  set(add(source, "product"), "name", std::string(kPoolProductPrefix) + spec.cluster);
  auto target = add(pool, "target");
  add_text(target, "path", spec.type == "logical" ? "/dev/" + spec.name : spec.path);
  return render(doc);
}

std::string network_xml(const NetworkSpec& spec) {
  pugi::xml_document doc;
  auto network = add(doc, "network");
  add_text(network, "name", spec.name);
  if (!spec.uuid.empty()) add_text(network, "uuid", spec.uuid);
  if (spec.mode == "bridge") {
    // The host's own bridge: libvirt only hands guests to it (no addresses, DHCP or DNS).
    set(add(network, "forward"), "mode", "bridge");
    set(add(network, "bridge"), "name", spec.bridge);
    return render(doc);
  }
  if (spec.mode == "nat" || spec.mode == "route") set(add(network, "forward"), "mode", spec.mode);
  auto bridge = add(network, "bridge");
  set(bridge, "name", spec.bridge);
  set(bridge, "stp", "on");
  set(bridge, "delay", "0");
  if (spec.mtu) set(add(network, "mtu"), "size", std::to_string(*spec.mtu));
  if (!spec.domain.empty()) {
    auto domain = add(network, "domain");
    set(domain, "name", spec.domain);
    set(domain, "localOnly", "yes");
  }
  add_dns(network, spec);
  add_ip(network, spec);
  return render(doc);
}

std::string dhcp_host_xml(const NetworkDhcpHost& host) {
  pugi::xml_document doc;
  add_dhcp_host(doc, host);
  return render(doc);
}

std::string dns_host_xml(const NetworkDnsHost& host) {
  pugi::xml_document doc;
  add_dns_host(doc, host);
  return render(doc);
}

std::string disk_xml(const DomainDisk& disk, const std::string& pool) {
  pugi::xml_document doc;
  add_disk(doc, disk, pool);
  return render(doc);
}

std::string domain_xml(const DomainSpec& spec, const std::string& pool, const std::string& uuid) {
  pugi::xml_document doc;
  auto domain = add(doc, "domain");
  set(domain, "type", spec.virt_type);
  add_text(domain, "name", spec.name);
  if (!uuid.empty()) add_text(domain, "uuid", uuid);
  add_owner(domain, spec.owner);
  // <memory> is what the guest boots with; the balloon brings it down to <currentMemory>, and
  // back up to <memory> while it runs. <vcpu current> are online, up to <vcpu> can be plugged.
  const std::uint64_t max_memory = std::max(spec.max_memory, spec.memory);
  const int max_vcpus = std::max(spec.max_vcpus, spec.vcpus);
  set(add_text(domain, "memory", std::to_string(max_memory)), "unit", "b");
  set(add_text(domain, "currentMemory", std::to_string(spec.memory)), "unit", "b");
  auto vcpu = add_text(domain, "vcpu", std::to_string(max_vcpus));
  set(vcpu, "placement", "static");
  if (max_vcpus > spec.vcpus) set(vcpu, "current", std::to_string(spec.vcpus));

  add_os(domain, spec);
  auto features = add(domain, "features");
  add(features, "acpi");
  add(features, "apic");
  if (spec.secure_boot) set(add(features, "smm"), "state", "on");  // secure boot's flash needs it
  if (spec.virt_type == "qemu") {
    // TCG's translation cache defaults to a quarter of the guest's memory: cap it.
    set(add_text(add(features, "tcg"), "tb-cache", "128"), "unit", "MiB");
  }
  if (spec.virt_type == "kvm") {
    auto cpu = add(domain, "cpu");
    set(cpu, "mode", "host-passthrough");
    set(cpu, "check", "none");
    set(cpu, "migratable", "on");
  }
  set(add(domain, "clock"), "offset", "utc");
  add_text(domain, "on_poweroff", "destroy");
  add_text(domain, "on_reboot", "restart");
  add_text(domain, "on_crash", "destroy");

  auto devices = add(domain, "devices");
  if (spec.firmware == "efi") add_root_ports(devices, spec);
  for (const auto& disk : spec.disks) add_disk(devices, disk, pool);
  for (const auto& nic : spec.nics) add_nic(devices, nic);
  add_console(devices, spec.serial_log);
  auto channel = add(devices, "channel");
  set(channel, "type", "unix");
  auto agent = add(channel, "target");
  set(agent, "type", "virtio");
  set(agent, "name", "org.qemu.guest_agent.0");
  auto rng = add(devices, "rng");
  set(rng, "model", "virtio");
  set(add_text(rng, "backend", "/dev/urandom"), "model", "random");
  set(add(devices, "memballoon"), "model", "virtio");
  if (spec.tpm) {
    auto tpm = add(devices, "tpm");
    set(tpm, "model", "tpm-crb");
    auto backend = add(tpm, "backend");
    set(backend, "type", "emulator");
    set(backend, "version", "2.0");
  }
  return render(doc);
}

std::optional<std::string> migration_xml(
    const std::string& live_xml, const std::function<std::string(const std::string&)>& dest_path,
    const std::string& src_dir, const std::string& dest_dir, const Ownership& owner) {
  pugi::xml_document doc;
  if (!doc.load_string(live_xml.c_str())) return std::nullopt;
  auto domain = doc.child("domain");
  if (!domain) return std::nullopt;
  auto moved = [&](const std::string& path) {
    if (src_dir.empty() || path.rfind(src_dir + "/", 0) != 0) return path;
    return dest_dir + path.substr(src_dir.size());
  };
  for (auto disk : domain.child("devices").children("disk")) {
    auto source = disk.child("source");
    if (!source) continue;
    const std::string type = disk.attribute("type").value();
    std::string path;
    if (type == "volume") {
      const std::string volume = source.attribute("volume").value();
      path = dest_path(volume);
      if (path.empty())
        throw std::runtime_error("volume " + volume + " has no path on the destination");
    } else if (type == "file") {
      path = moved(source.attribute("file").value());
    } else {
      continue;
    }
    disk.attribute("type").set_value("file");
    // The source anew: only the file (a volume's pool and name, and its index, go).
    auto fresh = disk.insert_child_before("source", source);
    fresh.append_attribute("file") = path.c_str();
    disk.remove_child(source);
    while (auto backing = disk.child("backingStore")) disk.remove_child(backing);
  }
  // A UEFI VM's NVRAM file in the source's pool directory: the destination's own, in its pool.
  if (auto nvram = domain.child("os").child("nvram")) {
    const std::string path = nvram.text().get();
    if (!path.empty()) nvram.text().set(moved(path).c_str());
  }
  for (const char* device : {"serial", "console"}) {
    for (auto node : domain.child("devices").children(device)) {
      auto source = node.child("source");
      if (auto a = source.attribute("path")) a.set_value(moved(a.value()).c_str());
    }
  }
  auto metadata = domain.child("metadata");
  if (!metadata) metadata = domain.insert_child_after("metadata", domain.child("uuid"));
  for (auto child = metadata.first_child(); child;) {
    auto next = child.next_sibling();
    const std::string name = child.name();
    if (name.size() >= 5 && name.substr(name.size() - 5) == "owner") {
      for (auto attr : child.attributes()) {
        if (std::string(attr.value()) == kOwnerNamespace) {
          metadata.remove_child(child);
          break;
        }
      }
    }
    child = next;
  }
  pugi::xml_document mark;
  if (!mark.load_string(owner_metadata_xml(owner).c_str())) return std::nullopt;
  metadata.append_copy(mark.first_child());
  return render(doc);
}

}  // namespace kumo::libvirt
