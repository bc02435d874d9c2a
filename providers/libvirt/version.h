// The libvirt kumo was built against and the one it runs with (for `kumo version`); no host is
// asked.
#pragma once

#include <string>

namespace kumo {

struct LibvirtVersions {
  std::string built;    // "9.0.0": the headers kumo was compiled with
  std::string running;  // the libvirt library loaded now; "unknown" if it does not say
};

LibvirtVersions libvirt_versions();

}  // namespace kumo
