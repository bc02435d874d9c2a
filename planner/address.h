// A resource's address, parsed: vm.web-0, network.front, image.debian-12, volume.web-0/root,
// volume.web-0/data/pg, pool.hv1/fast. Volumes belong to a VM instance (their parent) and have a
// role; pools belong to a host.
#pragma once

#include <optional>
#include <string>

namespace kumo {

enum class ResourceKind { Vm, Network, Volume, Image, Pool };
const char* to_string(ResourceKind k);  // vm | network | volume | image | pool

enum class VolumeRole { Root, Seed, Data, Other };

struct Address {
  ResourceKind kind = ResourceKind::Vm;
  std::string name;    // web-0, front, debian-12; for volumes the role: root, seed, data/pg
  std::string parent;  // volumes: the VM instance they belong to (web-0); "" otherwise

  static Address vm(std::string instance) { return {ResourceKind::Vm, std::move(instance), ""}; }
  static Address network(std::string n) { return {ResourceKind::Network, std::move(n), ""}; }
  static Address image(std::string n) { return {ResourceKind::Image, std::move(n), ""}; }
  // pool.hv1/fast: a storage pool belongs to its host (parent).
  static Address pool(std::string host, std::string n) {
    return {ResourceKind::Pool, std::move(n), std::move(host)};
  }
  static Address volume(std::string instance, std::string role) {
    return {ResourceKind::Volume, std::move(role), std::move(instance)};
  }
  // nullopt for text that is no address ("web-0", "vm.", "disk.x").
  static std::optional<Address> parse(const std::string& text);

  std::string str() const;
  // Volumes: the VM they belong to; others: themselves.
  Address owner_vm() const { return kind == ResourceKind::Volume ? vm(parent) : *this; }
  VolumeRole role() const;
  // Data volumes: the disk's name (pg for data/pg); "" otherwise.
  std::string data_disk() const;

  bool operator==(const Address&) const = default;
  auto operator<=>(const Address&) const = default;
};

}  // namespace kumo
