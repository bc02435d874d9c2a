// kumo import: a domain made by hand, as the vms: entry that adopts it (YAML text to paste into
// the file). Pure: from the host as observed.
#pragma once

#include <stdexcept>
#include <string>

#include "providers/observed.h"

namespace kumo {

struct ImportRequest {
  std::string cluster;  // the file's cluster
  std::string host;     // the host's name in the file
  std::string domain;   // the domain to adopt
  std::string name;     // the VM's name in the file ("" = the domain's)
};

// Why a domain cannot be imported, with what to do.
struct ImportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The entry, starting with a comment line that says where to paste it. Throws ImportError when
// the domain is missing, is already kumo's, or its name is no VM name and no --name was given.
std::string import_entry(const ObservedHost& host, const ImportRequest& request);

}  // namespace kumo
