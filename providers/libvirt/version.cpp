#include "providers/libvirt/version.h"

#include <libvirt/libvirt.h>

namespace kumo {
namespace {

// libvirt numbers versions as major * 1,000,000 + minor * 1,000 + release.
std::string dotted(unsigned long v) {
  return std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." +
         std::to_string(v % 1000);
}

}  // namespace

LibvirtVersions libvirt_versions() {
  LibvirtVersions v;
  v.built = dotted(LIBVIR_VERSION_NUMBER);
  unsigned long library = 0;
  v.running = virGetVersion(&library, nullptr, nullptr) == 0 ? dotted(library) : "unknown";
  return v;
}

}  // namespace kumo
