#include "planner/config/model.h"

#include <algorithm>

namespace kumo {

const char* to_string(VirtType v) {
  switch (v) {
    case VirtType::Auto:
      return "auto";
    case VirtType::Kvm:
      return "kvm";
    case VirtType::Qemu:
      return "qemu";
  }
  return "?";
}

const char* to_string(NetMode v) {
  switch (v) {
    case NetMode::Nat:
      return "nat";
    case NetMode::Isolated:
      return "isolated";
    case NetMode::Route:
      return "route";
    case NetMode::Bridge:
      return "bridge";
  }
  return "?";
}

const char* to_string(PlacementStrategy v) {
  return v == PlacementStrategy::Spread ? "spread" : "pack";
}

const char* to_string(UserDataChange v) {
  return v == UserDataChange::Recreate ? "recreate" : "ignore";
}

const char* to_string(WaitFor v) {
  switch (v) {
    case WaitFor::None:
      return "none";
    case WaitFor::Running:
      return "running";
    case WaitFor::Agent:
      return "agent";
    case WaitFor::CloudInit:
      return "cloud-init";
  }
  return "?";
}

images::ImageSource image_source(const ImageConfig& image) {
  return {.name = image.name,
          .url = image.url,
          .path = image.path,
          .checksum = image.checksum,
          .checksum_url = image.checksum_url,
          .checksum_none = image.checksum_none,
          .format = image.format,
          .ca_bundle = image.ca_bundle,
          .max_size = image.max_size};
}

std::optional<DhcpRange> NetworkConfig::effective_dhcp_range() const {
  if (!dhcp || !cidr) return std::nullopt;
  if (dhcp_range) return dhcp_range;
  const std::uint32_t size = ~cidr->mask() + 1;  // addresses in the block
  const std::uint32_t half = cidr->network.value + size / 2;
  return DhcpRange{{std::max(half, cidr->network.value + 2)}, cidr->last_host()};
}

std::vector<std::string> VmConfig::instance_names() const {
  std::vector<std::string> out;
  for (int i = 0; i < instance_count(); ++i) out.push_back(instance_name(i));
  return out;
}

std::string VmConfig::instance_name(int index) const {
  return count ? name + "-" + std::to_string(index) : name;
}

namespace {
template <typename T>
const T* find_named(const std::vector<T>& items, const std::string& name) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& t) { return t.name == name; });
  return it == items.end() ? nullptr : &*it;
}
}  // namespace

const HostConfig* ClusterConfig::find_host(const std::string& n) const {
  return find_named(hosts, n);
}
const ImageConfig* ClusterConfig::find_image(const std::string& n) const {
  return find_named(images, n);
}
const NetworkConfig* ClusterConfig::find_network(const std::string& n) const {
  return find_named(networks, n);
}
const VmConfig* ClusterConfig::find_vm(const std::string& n) const {
  return find_named(vms, n);
}

}  // namespace kumo
