// Host URIs for display: a password in the userinfo is never shown.
#pragma once

#include <string>

namespace kumo {

// qemu+ssh://user:pw@hv1/system -> qemu+ssh://user:***@hv1/system; anything else unchanged.
std::string redact_uri(const std::string& uri);

}  // namespace kumo
