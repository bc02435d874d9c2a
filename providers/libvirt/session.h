// The HostSession backed by libvirt: one connection and the host's storage pool, held for the
// session's life. Safe to use from several threads at once (libvirt's connection is).
//
// connect() throws HostError when the host cannot be opened (the message of open_connection())
// or when its pool is missing or inactive. Every other failure is a HostError that begins with
// host_label(), says which object and what operation, then gives libvirt's own words.
//
// Streams (uploads, downloads) never run on the session's connection but each on one of their
// own, leased from the session (opened on first need, reused after): libvirtd 9.0 (Debian 12's)
// can give the reply of another call on the same connection to a stream that is finishing, and
// that call then waits forever (its remote_daemon_stream.c serves a finished stream's message
// from a queue it has already pushed onto the reply queue); and an upload's data counts against
// libvirtd's max_client_requests (5 per connection), so calls beside it would wait behind it.
// Streams::InLine keeps them on the session's connection, for a session one thread uses at a
// time (the lock's: no other call is ever in flight beside its streams).
#pragma once

#include <memory>

#include "providers/host_session.h"

namespace kumo {

enum class Streams { Apart, InLine };

// `opened_ahead`: whether its sessions may take connections opened ahead (connection.h,
// OpenAhead); the lock's do not, they are not among the uses those were opened for.
std::unique_ptr<HostConnector> make_libvirt_connector(Streams streams = Streams::Apart,
                                                      bool opened_ahead = true);

}  // namespace kumo
