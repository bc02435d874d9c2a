// Opening a libvirt connection that cannot hang kumo, and turning libvirt's failures into
// messages a person can act on.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "providers/libvirt/handles.h"
#include "providers/provider.h"
#include "providers/redact.h"

namespace kumo::libvirt {

// Once per process: libvirt's thread setup, errors captured instead of printed to stderr, and
// kumo's event loop running in one background thread (keepalive needs it; event_loop.h).
void ensure_libvirt_ready();

// The last libvirt error raised on the calling thread (libvirt keeps errors per thread).
struct LibvirtError {
  int code = 0;  // virErrorNumber
  std::string message;
};
LibvirtError last_error();

// A virDomainState as kumo shows it: running, paused, shutoff, crashed, ...
std::string domain_state_name(int state);

// The volumes a host's read listed, by pool and name, handed on with its connection (give_back)
// to the steps that take it next: they read or delete those without a lookup by name first.
// Handles work on the connection they came from only.
using ListedVolumes = std::map<std::pair<std::string, std::string>, VolumeHandle>;

struct OpenResult {
  ConnectHandle conn;                       // null on failure
  std::string error;                        // "host hv1 (uri): what happened — what to check"
  int api_calls = 0;                        // libvirt calls made, for ObservedHost::api_calls
  std::shared_ptr<ListedVolumes> listed{};  // a connection given back with its read's volumes
};

// How the worker thread opens a connection. A test seam: the default calls
// virConnectOpenAuth with virConnectAuthPtrDefault.
using Opener = std::function<virConnectPtr(const std::string& uri)>;

// Opens host.uri within `timeout`. The open runs in a worker thread because libvirt has no
// connect timeout (an ssh that hangs, a socket that never answers). On timeout the worker is
// left to finish on its own and closes whatever connection it eventually gets.
//
// Every connection holds a few file descriptors (its socket, libvirt's wakeup eventfd, an ssh
// child's pipes) from the start of its open until it is closed, and an open abandoned at its
// timeout holds them until its host answers, which may be never. Running out inside libvirt
// aborts the process (GLib), so the process counts its connections (abandoned ones included)
// and opens none beyond connection_budget(): the host is then reported as not tried, at once.
// A host whose abandoned open still waits is not tried again either (describe_still_silent).
// `ahead`: whether it may take a connection opened ahead (OpenAhead) for host.uri; false for one
// that is not among the uses they were opened for (the lock's).
OpenResult open_connection(const HostTarget& host, std::chrono::milliseconds timeout,
                           const Opener& opener = {}, bool ahead = true);

// Connections opened ahead of their use. Before apply and destroy take the lock they know that
// their plan's reads and then their steps will each open a connection to every host, one after
// the other, and over ssh every open starts an ssh session (0.35–0.5 s here). An OpenAhead
// starts `uses` opens per host at once, in the background (at most `parallelism` at a time),
// while the lock is being taken. A later open_connection of the same URI takes one of them
// instead of opening, waiting for it within its own timeout: each serves one caller, as a fresh
// open would (nothing is shared). One that failed, or has not begun, is not used: its taker
// opens afresh, and reports what that says. Opens ahead use at most half of the process's
// connection budget, never a host whose earlier open still waits for an answer, and what nobody
// took is closed (or never begun) when the OpenAhead goes.
class OpenAhead {
 public:
  OpenAhead(const std::vector<HostTarget>& hosts, int uses, int parallelism,
            const Opener& opener = {});
  ~OpenAhead();
  OpenAhead(const OpenAhead&) = delete;
  OpenAhead& operator=(const OpenAhead&) = delete;
  std::size_t size() const;  // opens asked for

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// While a ConnectionReuse lives, a connection given back (give_back) waits for the next
// open_connection of its URI to take it, as an open ahead does: the plan's reads of an apply or
// destroy, done with a host, hand their connection on to the steps there, instead of closing it
// while the steps open another (over ssh, a new ssh session). One serves one caller at a time, as
// ever. What nobody took is closed when the ConnectionReuse goes.
class ConnectionReuse {
 public:
  ConnectionReuse();
  ~ConnectionReuse();
  ConnectionReuse(const ConnectionReuse&) = delete;
  ConnectionReuse& operator=(const ConnectionReuse&) = delete;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// A connection its user is done with: kept for a later open of `host` while a ConnectionReuse
// lives and the connection is alive, closed otherwise. `listed` (the handles of the volumes its
// read got) goes along with it to its next taker, or is freed with it.
void give_back(const HostTarget& host, ConnectHandle conn,
               std::shared_ptr<ListedVolumes> listed = {});

// How many connections the process may hold at once: what RLIMIT_NOFILE's soft limit leaves
// after a reserve for everything else (files, downloads), at a few descriptors each.
int connection_budget();

// Pure: the actionable message for a failed open, from one small table of libvirt's errors.
std::string describe_open_error(const HostTarget& host, const LibvirtError& error);
std::string describe_timeout(const HostTarget& host, std::chrono::milliseconds timeout);
// A host not tried again because its open that timed out earlier is still waiting for an answer.
std::string describe_still_silent(const HostTarget& host, std::chrono::milliseconds timeout);
// A host not tried because `held` connections (`abandoned` of them to hosts that never answered)
// use up the budget of `budget`.
std::string describe_no_budget(const HostTarget& host, int held, int abandoned, int budget);

// Pure: why a host offers no KVM, and what to check there. `libvirt_message` is what libvirt said
// when asked for KVM's domain capabilities ("" when not asked, or when its driver cannot say);
// without it the reason comes from the capabilities, which offer no KVM guest for `arch`.
std::string describe_no_kvm(const std::string& arch, const std::string& libvirt_message);

// "host hv1 (qemu+ssh://root@hv1/system)": how every message about a host begins.
std::string host_label(const HostTarget& host);

// The URI as shown in messages, with any password in it replaced (redact_host_uri).
std::string redact_uri(const std::string& uri);

}  // namespace kumo::libvirt
