// The HostSession backed by libvirt: one connection and the host's storage pool, held for the
// session's life. Safe to use from several threads at once (libvirt's connection is).
//
// connect() throws HostError when the host cannot be opened (the message of open_connection())
// or when its pool is missing or inactive. Every other failure is a HostError that begins with
// host_label(), says which object and what operation, then gives libvirt's own words.
#pragma once

#include <memory>

#include "providers/host_session.h"

namespace kumo {

std::unique_ptr<HostConnector> make_libvirt_connector();

}  // namespace kumo
