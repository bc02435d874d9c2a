#include "planner/address.h"

namespace kumo {

const char* to_string(ResourceKind k) {
  switch (k) {
    case ResourceKind::Vm:
      return "vm";
    case ResourceKind::Network:
      return "network";
    case ResourceKind::Volume:
      return "volume";
    case ResourceKind::Image:
      return "image";
    case ResourceKind::Pool:
      return "pool";
  }
  return "?";
}

std::optional<Address> Address::parse(const std::string& text) {
  const auto dot = text.find('.');
  if (dot == std::string::npos || dot + 1 >= text.size()) return std::nullopt;
  const std::string kind = text.substr(0, dot), rest = text.substr(dot + 1);
  if (kind == "vm") return vm(rest);
  if (kind == "network") return network(rest);
  if (kind == "image") return image(rest);
  if (kind == "volume" || kind == "pool") {
    const auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size()) return std::nullopt;
    if (kind == "pool") {
      if (rest.find('/', slash + 1) != std::string::npos) return std::nullopt;
      return pool(rest.substr(0, slash), rest.substr(slash + 1));
    }
    return volume(rest.substr(0, slash), rest.substr(slash + 1));
  }
  return std::nullopt;
}

std::string Address::str() const {
  if (kind == ResourceKind::Volume) return "volume." + parent + "/" + name;
  if (kind == ResourceKind::Pool) return "pool." + parent + "/" + name;
  return std::string(to_string(kind)) + "." + name;
}

VolumeRole Address::role() const {
  if (kind != ResourceKind::Volume) return VolumeRole::Other;
  if (name == "root") return VolumeRole::Root;
  if (name == "seed") return VolumeRole::Seed;
  if (name.rfind("data/", 0) == 0) return VolumeRole::Data;
  return VolumeRole::Other;
}

std::string Address::data_disk() const {
  return role() == VolumeRole::Data ? name.substr(5) : "";
}

}  // namespace kumo
