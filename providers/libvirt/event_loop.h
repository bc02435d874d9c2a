// kumo's libvirt event loop: what keepalive (and the console's stream events) need, at a fraction
// of the cost of libvirt's default GLib loop on busy connections.
//
// libvirt's remote client takes a connection's socket out of the event loop for every call a
// thread makes, and puts it back after: two handle updates per call. The default loop wakes its
// thread for each (GLib's context locks and wakeups: about 20 futex calls per libvirt call here,
// most of kumo's system calls on a busy destroy). This loop applies handle updates lazily: the
// thread wakes for new handles, timers and removals, and otherwise sees updates when it next
// looks, within kLazyUpdate. libvirt copes with a stale watch (a thread in a call holds "the
// buck"; the socket's event callback then does nothing), and nothing waits for the loop but
// keepalive (seconds) and the console, which asks for eager updates. For the same reason a
// handle just dispatched rests for 10 ms (its socket stays readable while a thread in a call has
// yet to read the reply), and a timer pushed back (keepalive's, on every message received) does
// not wake the loop.
#pragma once

#include <chrono>

#include <libvirt/libvirt.h>

namespace kumo::libvirt {

inline constexpr std::chrono::milliseconds kLazyUpdate{100};

// Registers the loop with libvirt (virEventRegisterImpl) and starts its thread. Once per
// process, before any connection opens (ensure_libvirt_ready does it).
void start_event_loop();

// Every handle update wakes the loop at once (kumo console: output shows as it comes).
void set_eager_updates(bool eager);

// What the loop has done since it started, for tests and benchmarks.
struct EventLoopStats {
  unsigned long long iterations = 0, dispatched = 0, timer_fires = 0, wakeups = 0;
  int handles = 0, timers = 0;  // registered now
};
EventLoopStats event_loop_stats();

}  // namespace kumo::libvirt
