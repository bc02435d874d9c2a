// The CLI's bindings of the engine to the real world: libvirt hosts, the image cache, curl.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

#include "planner/executor.h"
#include "planner/lock.h"
#include "planner/planner.h"
#include "providers/host_session.h"

namespace kumo::cli {

// --cache-dir, defaulting to $XDG_CACHE_HOME/kumo/images.
struct CacheArgs {
  std::string dir;
  void add_to(CLI::App& cmd);
  // The directory to use; "" with *error set when neither --cache-dir nor HOME says one.
  std::string resolve(std::string* error) const;
};

ImageResolver make_image_resolver(const std::string& cache_dir);
ImageFetcher make_image_fetcher(const std::string& cache_dir);
std::unique_ptr<HostConnector> make_connector();
// For the lock's sessions: each is used by one thread at a time, so its streams (writing and
// reading the lock) stay on its one connection until it lends it (providers/libvirt/session.h);
// they never take connections opened ahead or given back (those are for the reads, the steps
// and their streams).
std::unique_ptr<HostConnector> make_lock_connector();
// Begins `uses` connections to each host now, in the background, for later opens to take
// (providers/libvirt/connection.h, OpenAhead); what nobody took is closed when the result goes.
std::shared_ptr<void> open_ahead(const std::vector<HostTarget>& hosts, int uses, int parallelism);

// While the result lives, the plan's connections, once it is done with a host, are handed on to
// the steps there (providers/libvirt/connection.h, ConnectionReuse); what nobody took is closed
// when it goes.
std::shared_ptr<void> reuse_connections();

// This process as a lock holder: user, machine, its run identity, `command`, now, a random token.
LockHolder lock_holder(const std::string& command);
// A holder on this machine whose process is gone (holder_is_stale).
bool lock_is_stale(const LockHolder& holder);

// --lock-timeout: waits while the lock is held, trying again every second until `limit` has
// passed since the first refusal (then that refusal stands). Says once on `err` whom it waits for.
LockWait lock_waiter(std::chrono::milliseconds limit, const std::string& verb, std::ostream& err);

}  // namespace kumo::cli
