#include "planner/plan_check.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>
#include <stdexcept>

#include "planner/config/names.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what, const std::string& value) {
  std::string shown;
  for (char ch : value.substr(0, 80)) shown += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  throw std::invalid_argument(where + ": " + what + " \"" + shown + "\"");
}

bool is_hex(const std::string& s, std::size_t length) {
  return s.size() == length && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A libvirt object's name kumo could have made: no '/', no leading '.', nothing unprintable.
bool is_object_name(const std::string& s) {
  return !s.empty() && s.size() <= 255 && s[0] != '.' &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

// libvirt's UUIDs are hex and '-'; the fakes' are names: letters, digits and '-' cover both.
bool is_uuid_text(const std::string& s) {
  return s.size() <= 64 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
             std::string::npos;
}

bool is_mac(const std::string& s) {
  if (s.size() != 17) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool colon = i % 3 == 2;
    if (colon ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

void name_of(const std::string& where, const std::string& field, const std::string& value) {
  if (!is_object_name(value)) bad(where, field + " is not a name kumo gives objects:", value);
}

void owned_volume(const Plan& plan, const std::string& where, const std::string& field,
                  const std::string& name, const std::string& address) {
  name_of(where, field, name);
  const auto owner = volume_owner(name);
  if (!owner || owner->cluster != plan.cluster || owner->address != address)
    bad(where, field + " is not this cluster's volume of " + address + ":", name);
}

void check_vm(const Plan& plan, const ResourceChange& c, const VmPayload& vm,
              const std::string& where) {
  if (vm.name != c.address.name || check_hostname(vm.name))
    bad(where, "VM name is not the instance of " + c.address.str() + ":", vm.name);
  // An adopted VM has neither: its disks are the ones it had.
  const bool adopted = !vm.record.adopted.empty();
  if (adopted ? !vm.root_volume.empty() : vm.root_volume != root_volume_name(plan.cluster, vm.name))
    bad(where, "root_volume is not this VM's:", vm.root_volume);
  if (adopted ? !vm.seed_volume.empty() : vm.seed_volume != seed_volume_name(plan.cluster, vm.name))
    bad(where, "seed_volume is not this VM's:", vm.seed_volume);
  if (adopted && !vm.data_disks.empty()) bad(where, "an adopted VM with data disks:", vm.name);
  if (!vm.adopt_from.empty() &&
      (c.action != Action::Adopt || !adopted || vm.adopt_from.size() > 200 ||
       vm.adopt_from.find_first_of("/\n") != std::string::npos))
    bad(where, "adopt_from is no domain this change adopts:", vm.adopt_from);
  if (c.action == Action::Adopt && vm.adopt_from.empty())
    bad(where, "an adoption names no domain:", vm.name);
  for (const auto& [disk, volume] : vm.data_disks) {
    name_of(where, "data disk", disk);
    if (volume != data_volume_name(plan.cluster, vm.name, disk))
      bad(where, "data disk " + disk + " is not this VM's volume:", volume);
  }
  for (const auto& n : vm.nics) {
    if (!n.network.empty()) name_of(where, "NIC network", n.network);
    if (!n.bridge.empty()) name_of(where, "NIC bridge", n.bridge);
    if (!n.direct.empty()) name_of(where, "NIC interface", n.direct);
    if (!n.direct.empty() && n.mode != "bridge" && n.mode != "vepa" && n.mode != "private" &&
        n.mode != "passthrough")
      bad(where, "NIC macvtap mode is not one kumo sets:", n.mode);
    if (!n.model.empty()) name_of(where, "NIC model", n.model);
    if (n.queues < 0 || n.queues > 256)
      bad(where, "NIC queues out of range:", std::to_string(n.queues));
    if (n.network.empty() && n.bridge.empty() && n.direct.empty())
      bad(where, "NIC is on nothing:", n.mac);
    if (!is_mac(n.mac)) bad(where, "NIC MAC is not a MAC address:", n.mac);
  }
  if (vm.cpus < 1 || vm.cpus > 4096) bad(where, "cpus out of range:", std::to_string(vm.cpus));
  if (vm.memory == 0) bad(where, "memory is zero:", "0");
  if (vm.wait_timeout.count() < 0) bad(where, "wait_timeout_s is negative:", "");
  if (!is_uuid_text(vm.spec_hash.substr(vm.spec_hash.find(':') + 1)))
    bad(where, "spec_hash is not a hash:", vm.spec_hash);
}

void check_network(const Plan& plan, const ResourceChange& c, const NetworkSpec& n,
                   const std::string& where) {
  if (n.name != network_name(plan.cluster, c.address.name) || !is_object_name(n.name))
    bad(where, "network name is not this cluster's name for " + c.address.str() + ":", n.name);
  static const std::set<std::string> modes = {"nat", "route", "isolated", "bridge"};
  if (!modes.count(n.mode)) bad(where, "unknown network mode", n.mode);
  name_of(where, "bridge", n.bridge);
  if (!n.uuid.empty()) bad(where, "a network's UUID is chosen by apply:", n.uuid);
  if (n.prefix < 0 || n.prefix > 32) bad(where, "prefix out of range:", std::to_string(n.prefix));
  for (const auto& h : n.dhcp_hosts) {
    if (!is_mac(h.mac)) bad(where, "DHCP host MAC is not a MAC address:", h.mac);
  }
}

void check_volume(const Plan& plan, const ResourceChange& c, const VolumePayload& v,
                  const std::string& where) {
  owned_volume(plan, where, "volume name", v.name, c.address.str());
  if (!v.base_volume.empty()) {
    name_of(where, "base_volume", v.base_volume);
    const auto owner = volume_owner(v.base_volume);
    if (!owner || !owner->cluster.empty() || owner->address.rfind("image.", 0) != 0 ||
        owner->address.find('/') != std::string::npos)
      bad(where, "base_volume is not a base image's volume:", v.base_volume);
  }
}

// A pool a saved plan would make: on the change's host, of a type kumo makes, on an absolute
// directory or on devices under /dev, marked as this plan's cluster's. (A logical pool's build
// also refuses devices that hold a file system or an LVM label: storage_pools.md.)
void check_pool(const Plan& plan, const ResourceChange& c, const PoolSpec& p,
                const std::string& where) {
  name_of(where, "pool name", p.name);
  if (p.name != c.address.name) bad(where, "pool payload names another pool:", p.name);
  if (c.address.parent != c.host) bad(where, "pool lives on another host:", c.address.parent);
  if (p.cluster != plan.cluster) bad(where, "pool is marked as another cluster's:", p.cluster);
  if (p.type == "dir") {
    if (p.path.empty() || p.path[0] != '/' || p.path.find("..") != std::string::npos)
      bad(where, "dir pool path is not an absolute path:", p.path);
    if (!p.devices.empty()) bad(where, "a dir pool has no devices:", p.devices.front());
  } else if (p.type == "logical") {
    if (p.devices.empty()) bad(where, "a logical pool needs devices", "");
    for (const auto& d : p.devices)
      if (d.rfind("/dev/", 0) != 0 || d.find("..") != std::string::npos)
        bad(where, "logical pool device is not under /dev:", d);
    if (!p.path.empty()) bad(where, "a logical pool has no path:", p.path);
  } else {
    bad(where, "pool type is not dir or logical:", p.type);
  }
}

void check_change(const Plan& plan, const std::set<std::string>& hosts, const ResourceChange& c) {
  const std::string where = "change " + c.address.str();
  if (!hosts.count(c.host)) bad(where, "host is not one of the plan's hosts:", c.host);
  if (c.kind() == ResourceKind::Image) bad(where, "an image is no change of its own:", "");
  if (c.kind() == ResourceKind::Volume && (check_hostname(c.address.parent)))
    bad(where, "volume's VM is not an instance name:", c.address.parent);
  if (c.kind() == ResourceKind::Vm && check_hostname(c.address.name))
    bad(where, "VM is not an instance name:", c.address.name);
  if (const auto* vm = c.vm()) check_vm(plan, c, *vm, where);
  if (const auto* n = c.network()) check_network(plan, c, *n, where);
  if (const auto* v = c.volume()) check_volume(plan, c, *v, where);
  if (const auto* p = c.pool()) check_pool(plan, c, *p, where);
  const bool has_payload = !std::holds_alternative<std::monostate>(c.desired);
  const bool wrong_payload = (c.kind() == ResourceKind::Vm && has_payload && !c.vm()) ||
                             (c.kind() == ResourceKind::Network && has_payload && !c.network()) ||
                             (c.kind() == ResourceKind::Volume && has_payload && !c.volume()) ||
                             (c.kind() == ResourceKind::Pool && has_payload && !c.pool());
  if (wrong_payload || (c.action != Action::Delete && !has_payload))
    bad(where, "desired state does not fit the change:", to_string(c.action));
  if (c.action == Action::Move &&
      (!c.observed || c.observed->host.empty() || c.observed->host == c.host))
    bad(where, "a move records no other host it comes from:", c.host);
  if (c.action != Action::Move && (c.steps.live || c.steps.remove_dest_copy))
    bad(where, "move steps on a change that is no move:", to_string(c.action));
  if (c.action != Action::Create && !c.observed)
    bad(where, "the plan records no observed object for", to_string(c.action));
  if (!c.observed) return;
  const ObservedRef& o = *c.observed;
  if (!o.host.empty() && !hosts.count(o.host))
    bad(where, "observed host is not one of the plan's hosts:", o.host);
  if (!is_uuid_text(o.uuid)) bad(where, "observed UUID is not a UUID:", o.uuid);
  switch (c.kind()) {
    case ResourceKind::Vm:
      if (o.name != c.address.name)
        bad(where, "observed domain is not " + c.address.name + ":", o.name);
      if (o.uuid.empty()) bad(where, "observed domain has no UUID:", o.name);
      break;
    case ResourceKind::Network:
      if (o.name != network_name(plan.cluster, c.address.name))
        bad(where, "observed network is not this cluster's:", o.name);
      if (o.uuid.empty()) bad(where, "observed network has no UUID:", o.name);
      if (o.state == kStaleNetworkRecord && c.action != Action::Delete)
        bad(where, "only a delete acts on a network's stale record, not", to_string(c.action));
      break;
    case ResourceKind::Volume:
      owned_volume(plan, where, "observed volume", o.name, c.address.str());
      break;
    case ResourceKind::Pool:
      if (o.name != c.address.name)
        bad(where, "observed pool is not " + c.address.name + ":", o.name);
      break;
    case ResourceKind::Image:
      break;
  }
}

void check_image(const Plan& plan, const std::set<std::string>& hosts, const ImagePlan& im) {
  const std::string where = "image " + im.name;
  name_of(where, "image name", im.name);
  if (!im.checksum.empty() && !is_checksum_text(im.checksum))
    bad(where, "bad checksum", im.checksum);
  if (!im.volume.empty()) {
    const auto colon = im.checksum.find(':');
    if (im.checksum.empty() ||
        im.volume != image_volume_name(im.checksum.substr(0, colon), im.checksum.substr(colon + 1)))
      bad(where, "volume is not the one its checksum names:", im.volume);
  }
  if (im.fetch.checksum && !is_checksum_text(im.fetch.checksum->str()))
    bad(where, "bad fetch checksum", im.fetch.checksum->str());
  for (const auto* list : {&im.upload_to, &im.present_on, &im.partial_on}) {
    for (const auto& h : *list)
      if (!hosts.count(h)) bad(where, "host is not one of the plan's hosts:", h);
  }
  (void)plan;
}

}  // namespace

bool is_checksum_text(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  const std::string algo = text.substr(0, colon), hex = text.substr(colon + 1);
  return (algo == "sha256" && is_hex(hex, 64)) || (algo == "sha512" && is_hex(hex, 128));
}

void check_plan_fields(const Plan& plan) {
  if (check_hostname(plan.cluster)) bad("cluster", "not a cluster name:", plan.cluster);
  std::set<std::string> hosts;
  for (const auto& h : plan.hosts) {
    name_of("host " + h.name, "host name", h.name);
    name_of("host " + h.name, "pool", h.pool);
    if (h.virt_type != "" && h.virt_type != "kvm" && h.virt_type != "qemu")
      bad("host " + h.name, "unknown virt_type", h.virt_type);
    if (!hosts.insert(h.name).second) bad("host " + h.name, "listed twice:", h.name);
    // Where live moves send a VM's memory and disks: as the loader admits them, nothing else.
    const auto plain = [](const std::string& s, const char* extra) {
      return std::all_of(s.begin(), s.end(), [&](unsigned char ch) {
        return std::isalnum(ch) || std::strchr(extra, ch) != nullptr;
      });
    };
    const std::string& dir = h.migration_socket_dir;
    if (!dir.empty() && (dir[0] != '/' || dir.size() > 80 || !plain(dir, "/._-+")))
      bad("host " + h.name, "migration socket_dir is not a plain absolute path:", dir);
    if (!h.migration_address.empty() && !plain(h.migration_address, ".-:"))
      bad("host " + h.name, "migration address is not a host name or IP:", h.migration_address);
  }
  for (const auto& c : plan.changes) check_change(plan, hosts, c);
  for (const auto& im : plan.images) check_image(plan, hosts, im);
}

}  // namespace kumo
