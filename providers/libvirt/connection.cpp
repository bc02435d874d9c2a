#include "providers/libvirt/connection.h"

#include "providers/libvirt/event_loop.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>

#include <libvirt/virterror.h>

namespace kumo::libvirt {
namespace {

// One row per failure people actually hit. libvirt reports ssh and socket trouble as a generic
// VIR_ERR_SYSTEM_ERROR whose text carries ssh's stderr, so most rows match on the text; the
// first matching row wins, so specific rows come first.
struct OpenErrorHint {
  int code;                          // virErrorNumber, or 0 for any
  std::string_view needle, needle2;  // substrings of libvirt's message; "" matches anything
  std::string_view what, check;      // "{socket}" and "{user}" are filled in
};

constexpr std::string_view kAuthCheck = "is your key in {user}'s authorized_keys?";
constexpr std::string_view kReachCheck = "is the host up and reachable?";
constexpr std::string_view kUriCheck =
    "check the host's uri in kumo.yaml (e.g. qemu+ssh://root@hv1/system)";

constexpr OpenErrorHint kOpenErrorHints[] = {
    {0, "Failed to connect socket", "Permission denied",
     "permission denied on the libvirt socket {socket}", "is your user in the libvirt group?"},
    {0, "Failed to connect socket", "", "cannot connect to the libvirt socket {socket}",
     "is libvirtd running there?"},
    {0, "Host key verification failed", "", "host key verification failed",
     "is the host's current key in your known_hosts (ssh to it once)?"},
    {0, "Could not resolve hostname", "", "unknown host name", "is the name in DNS or /etc/hosts?"},
    {0, "Connection refused", "", "connection refused",
     "is sshd (or libvirtd's TCP/TLS listener) running there?"},
    {0, "No route to host", "", "no route to host", kReachCheck},
    {0, "Network is unreachable", "", "network unreachable", kReachCheck},
    {0, "Connection timed out", "", "connection timed out", kReachCheck},
    {0, "Permission denied", "", "authentication failed", kAuthCheck},
    {VIR_ERR_AUTH_FAILED, "", "", "authentication failed", kAuthCheck},
    {VIR_ERR_AUTH_CANCELLED, "", "", "authentication failed", kAuthCheck},
    {VIR_ERR_AUTH_UNAVAILABLE, "", "", "authentication unavailable (polkit)",
     "run kumo as root or add your user to the libvirt group"},
    {0, "Unable to parse URI", "", "malformed URI", kUriCheck},
    {VIR_ERR_NO_CONNECT, "no connection driver available", "", "no libvirt driver for this URI",
     kUriCheck},
    {0, "Cannot read CA certificate", "", "TLS certificates are missing",
     "use qemu+ssh:// or install the CA and client certificates"},
};

bool contains(std::string_view text, std::string_view needle) {
  return needle.empty() || text.find(needle) != std::string_view::npos;
}

// "Failed to connect socket to '/x': ..." → "/x".
std::string quoted_path(const std::string& message) {
  const auto open = message.find('\'');
  const auto close = open == std::string::npos ? open : message.find('\'', open + 1);
  if (close == std::string::npos) return "";
  return message.substr(open + 1, close - open - 1);
}

// "qemu+ssh://root@hv2/system" → "root"; no user in the URI → "the remote user".
std::string uri_user(const std::string& uri) {
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return "the remote user";
  const auto authority = scheme_end + 3;
  const auto at = uri.find('@', authority);
  const auto slash = uri.find('/', authority);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) {
    return "the remote user";
  }
  const std::string userinfo = uri.substr(authority, at - authority);
  return userinfo.substr(0, userinfo.find(':'));  // never a password
}

std::string fill(std::string_view pattern, const std::string& socket, const std::string& user) {
  std::string out(pattern);
  for (const auto& [key, value] : {std::pair{"{socket}", socket}, std::pair{"{user}", user}}) {
    const std::string_view k = key;
    if (const auto at = out.find(k); at != std::string::npos) out.replace(at, k.size(), value);
  }
  return out;
}

std::string prefix(const HostTarget& host) {
  return host_label(host) + ": ";
}

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

void ignore_libvirt_error(void*, virErrorPtr) {}

// Descriptors kept for everything but connections (stdio, libvirt's event loop, image files,
// downloads), and what one connection may hold at most (socket or ssh pipes, wakeup eventfd).
constexpr int kReservedDescriptors = 128;
constexpr int kDescriptorsPerConnection = 4;

// The connections the process holds now, and the hosts whose abandoned open still waits for an
// answer: process-wide because descriptors are.
class ProcessConnections {
 public:
  static ProcessConnections& get() {
    // Never destroyed: an abandoned open may end while the process exits, and its slot still
    // comes back here.
    static ProcessConnections* const all = new ProcessConnections;
    return *all;
  }
  struct Slot;
  // A place for one more connection to `host`, or nullptr and why not: the budget is used up,
  // or the host's last open is still waiting (trying again would only hold more descriptors).
  std::shared_ptr<Slot> take(const HostTarget& host, std::string* refusal);
  // A place for an open ahead (OpenAhead): only while at most half the budget is held, so opens
  // ahead never leave a needed open without one.
  std::shared_ptr<Slot> take_ahead(const HostTarget& host);
  // Why `host` is not tried (its last open still waits for an answer), or "".
  std::string still_silent(const HostTarget& host);

 private:
  std::mutex mu_;
  int held_ = 0;
  // One entry per abandoned open still waiting: name + uri -> the timeout it missed.
  std::multimap<std::string, std::chrono::milliseconds> silent_;
};

std::string silent_key(const HostTarget& host) {
  return host.name + '\n' + host.uri;
}

// One connection's place, from the start of its open until it is closed (or, abandoned, until
// its open ends).
struct ProcessConnections::Slot {
  explicit Slot(ProcessConnections& all) : all(all) {}
  void abandon(const HostTarget& host, std::chrono::milliseconds timeout) {
    std::lock_guard lock(all.mu_);
    key = silent_key(host);
    all.silent_.emplace(key, timeout);
  }
  ~Slot() {
    std::lock_guard lock(all.mu_);
    --all.held_;
    if (!key.empty()) all.silent_.erase(all.silent_.find(key));
  }
  ProcessConnections& all;
  std::string key;  // set once abandoned
};

std::shared_ptr<ProcessConnections::Slot> ProcessConnections::take(const HostTarget& host,
                                                                   std::string* refusal) {
  std::lock_guard lock(mu_);
  if (const auto it = silent_.find(silent_key(host)); it != silent_.end()) {
    *refusal = describe_still_silent(host, it->second);
    return nullptr;
  }
  const int budget = connection_budget();
  if (held_ >= budget) {
    *refusal = describe_no_budget(host, held_, static_cast<int>(silent_.size()), budget);
    return nullptr;
  }
  auto slot = std::make_shared<Slot>(*this);
  ++held_;
  return slot;
}

std::shared_ptr<ProcessConnections::Slot> ProcessConnections::take_ahead(const HostTarget& host) {
  std::lock_guard lock(mu_);
  if (silent_.count(silent_key(host)) > 0 || held_ >= connection_budget() / 2) return nullptr;
  auto slot = std::make_shared<Slot>(*this);
  ++held_;
  return slot;
}

std::string ProcessConnections::still_silent(const HostTarget& host) {
  std::lock_guard lock(mu_);
  const auto it = silent_.find(silent_key(host));
  return it == silent_.end() ? std::string() : describe_still_silent(host, it->second);
}

// What a caller and its worker share; whoever finishes last frees it (shared_ptr).
struct PendingOpen {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  bool abandoned = false;
  ConnectHandle conn;
  std::shared_ptr<ListedVolumes> listed;  // given back (give_back) with what its read listed
  LibvirtError error;
  // Opens ahead only (OpenAhead): whether its worker began, whether a caller (or the OpenAhead's
  // end) took it before that, and its place in the budget once begun.
  bool started = false;
  bool claimed = false;
  std::shared_ptr<ProcessConnections::Slot> slot;
};

// Keepalive makes a host that dies mid-observation fail within ~20s instead of hanging.
// In-process drivers (test:///) refuse it, and need none.
void keep_alive(virConnectPtr conn) {
  if (virConnectSetKeepAlive(conn, 5, 3) < 0) virResetLastError();
}

// The opens ahead not yet taken, by URI, in the order they were asked for.
class OpensAhead {
 public:
  static OpensAhead& get() {
    static OpensAhead* const all = new OpensAhead;  // never destroyed: workers may outlive main
    return *all;
  }
  void add(const std::string& uri, std::shared_ptr<PendingOpen> open) {
    std::lock_guard lock(mu_);
    waiting_.emplace(uri, std::move(open));
  }
  // One of `uri` not yet taken, now taken (one that is open already before one still opening);
  // or null.
  std::shared_ptr<PendingOpen> take(const std::string& uri) {
    std::lock_guard lock(mu_);
    auto [it, end] = waiting_.equal_range(uri);
    if (it == end) return nullptr;
    for (auto ready = it; ready != end; ++ready) {
      std::lock_guard open_lock(ready->second->mutex);
      if (ready->second->done && ready->second->conn) {
        it = ready;
        break;
      }
    }
    auto open = std::move(it->second);
    waiting_.erase(it);
    return open;
  }
  // Takes `open` out if it is still there; whether it was.
  bool remove(const std::string& uri, const std::shared_ptr<PendingOpen>& open) {
    std::lock_guard lock(mu_);
    for (auto [it, end] = waiting_.equal_range(uri); it != end; ++it) {
      if (it->second == open) {
        waiting_.erase(it);
        return true;
      }
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::multimap<std::string, std::shared_ptr<PendingOpen>> waiting_;
};

// One open ahead, on an OpenAhead's worker thread: unless taken already, opens and keeps the
// connection (with keepalive) for whoever takes it; one that nobody wants any more is closed.
void run_open_ahead(const HostTarget& host, const std::shared_ptr<PendingOpen>& pending,
                    const Opener& opener) {
  {
    std::lock_guard lock(pending->mutex);
    if (pending->claimed || pending->abandoned) return;
    pending->started = true;
    pending->slot = ProcessConnections::get().take_ahead(host);
    if (!pending->slot) {  // no room: its taker opens afresh
      pending->done = true;
      pending->finished.notify_one();
      return;
    }
  }
  ConnectHandle conn(opener(host.uri), ConnectCloser{pending->slot});
  const LibvirtError error = conn ? LibvirtError{} : last_error();
  if (conn) keep_alive(conn.get());
  std::lock_guard lock(pending->mutex);
  pending->slot.reset();           // from now on only the connection holds it
  if (pending->abandoned) return;  // `conn` closes as it goes out of scope
  pending->conn = std::move(conn);
  pending->error = error;
  pending->done = true;
  pending->finished.notify_one();
}

// The connection carries `slot` to its close (ConnectCloser); a failed or abandoned open gives it
// back as this worker ends.
void run_open(const std::shared_ptr<PendingOpen>& pending, const Opener& opener,
              const std::string& uri, std::shared_ptr<void> slot) {
  ConnectHandle conn(opener(uri), ConnectCloser{std::move(slot)});
  const LibvirtError error = conn ? LibvirtError{} : last_error();
  std::lock_guard lock(pending->mutex);
  if (pending->abandoned) return;  // nobody waits any more: `conn` closes as it goes out of scope
  pending->conn = std::move(conn);
  pending->error = error;
  pending->done = true;
  pending->finished.notify_one();
}

virConnectPtr default_opener(const std::string& uri) {
  return virConnectOpenAuth(uri.c_str(), virConnectAuthPtrDefault, 0);
}

}  // namespace

void ensure_libvirt_ready() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, ignore_libvirt_error);
    // Runs for the life of the process; keepalive on every connection depends on it.
    start_event_loop();
  });
}

LibvirtError last_error() {
  const virErrorPtr error = virGetLastError();
  if (error == nullptr) return {0, "unknown libvirt error"};
  return {error->code, error->message != nullptr ? error->message : "unknown libvirt error"};
}

std::string describe_no_kvm(const std::string& arch, const std::string& libvirt_message) {
  std::string why = libvirt_message;
  // libvirt's messages begin with their class ("invalid argument: KVM is not supported by ...").
  for (std::string_view kind : {"invalid argument: ", "unsupported configuration: ",
                                "operation failed: ", "internal error: "}) {
    if (why.rfind(kind, 0) == 0) why.erase(0, kind.size());
  }
  if (why.empty()) {
    why =
        "libvirt offers no KVM guests" + (arch.empty() ? std::string() : " for " + arch) + " there";
  }
  return why +
         " — check that /dev/kvm exists there, VT-x/AMD-V is enabled in its firmware, and the "
         "kvm_intel or kvm_amd module is loaded";
}

std::string host_label(const HostTarget& host) {
  if (host.uri_sensitive) return "host " + host.name;
  return "host " + host.name + " (" + redact_uri(host.uri) + ")";
}

std::string redact_uri(const std::string& uri) {
  return redact_host_uri(uri);
}

std::string describe_open_error(const HostTarget& host, const LibvirtError& error) {
  for (const auto& hint : kOpenErrorHints) {
    if (hint.code != 0 && hint.code != error.code) continue;
    if (!contains(error.message, hint.needle) || !contains(error.message, hint.needle2)) continue;
    // Both may come from the URI: not shown when it is a secret.
    const std::string socket = host.uri_sensitive ? "(sensitive)" : quoted_path(error.message);
    const std::string user = host.uri_sensitive ? "the remote user" : uri_user(host.uri);
    return prefix(host) + fill(hint.what, socket, user) + " — " + fill(hint.check, socket, user);
  }
  // libvirt's messages may quote the URI (or its host): not shown when the URI is a secret.
  return prefix(host) + "cannot connect: " +
         (host.uri_sensitive ? "(libvirt's message is not shown: the uri is sensitive)"
                             : error.message) +
         " — is libvirtd running there?";
}

std::string describe_timeout(const HostTarget& host, std::chrono::milliseconds timeout) {
  return prefix(host) + "timed out after " + format_duration(timeout) + " — " +
         std::string(kReachCheck);
}

std::string describe_still_silent(const HostTarget& host, std::chrono::milliseconds timeout) {
  return prefix(host) + "timed out after " + format_duration(timeout) +
         " earlier in this run and has still not answered — " + std::string(kReachCheck);
}

std::string describe_no_budget(const HostTarget& host, int held, int abandoned, int budget) {
  const std::string why =
      abandoned > 0 ? std::to_string(abandoned) +
                          " earlier connections to hosts that never "
                          "answered still hold file descriptors"
                    : std::to_string(held) + " open libvirt connections hold file descriptors";
  return prefix(host) + "not tried: " + why + " (at most " + std::to_string(budget) +
         " connections under this process's limit of open files) — make the hosts that timed "
         "out answer or take them out of kumo.yaml, or raise the limit (ulimit -n)";
}

int connection_budget() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
  const rlim_t open_files = limit.rlim_cur;
  const rlim_t room = open_files == RLIM_INFINITY ? rlim_t{1} << 20 : open_files;
  if (room <= static_cast<rlim_t>(kReservedDescriptors + kDescriptorsPerConnection)) return 1;
  const rlim_t budget = (room - kReservedDescriptors) / kDescriptorsPerConnection;
  return static_cast<int>(std::min<rlim_t>(budget, 1 << 18));
}

struct OpenAhead::State {
  std::vector<std::pair<HostTarget, std::shared_ptr<PendingOpen>>> opens;
  std::atomic<std::size_t> next{0};
};

OpenAhead::OpenAhead(const std::vector<HostTarget>& hosts, int uses, int parallelism,
                     const Opener& opener)
    : state_(std::make_shared<State>()) {
  ensure_libvirt_ready();
  for (int use = 0; use < uses; ++use) {  // every host's first use before any host's second
    for (const auto& host : hosts) {
      if (host.uri.empty()) continue;
      auto pending = std::make_shared<PendingOpen>();
      OpensAhead::get().add(host.uri, pending);
      state_->opens.emplace_back(host, std::move(pending));
    }
  }
  const std::size_t workers = std::min<std::size_t>(
      state_->opens.size(), static_cast<std::size_t>(std::max(parallelism, 1)));
  const Opener open = opener ? opener : Opener(default_opener);
  for (std::size_t w = 0; w < workers; ++w) {
    try {
      // Detached: an open may never end (a host that does not answer); its taker's timeout
      // bounds the wait, as for any open.
      std::thread([state = state_, open] {
        for (std::size_t i = state->next++; i < state->opens.size(); i = state->next++)
          run_open_ahead(state->opens[i].first, state->opens[i].second, open);
      }).detach();
    } catch (const std::system_error&) {
      break;  // fewer workers; opens not begun are opened afresh by their takers
    }
  }
}

OpenAhead::~OpenAhead() {
  for (auto& [host, pending] : state_->opens) {
    if (!OpensAhead::get().remove(host.uri, pending)) continue;  // taken
    std::lock_guard lock(pending->mutex);
    pending->claimed = true;
    pending->abandoned = true;  // a worker still opening closes what it gets
    pending->conn.reset();
  }
}

std::size_t OpenAhead::size() const {
  return state_->opens.size();
}

struct ConnectionReuse::State {
  std::mutex mu;
  std::vector<std::pair<std::string, std::shared_ptr<PendingOpen>>> given;  // uri, connection
};

namespace {

std::mutex reuse_mu;
std::shared_ptr<ConnectionReuse::State> reuse_now;  // the live ConnectionReuse's, if any

}  // namespace

ConnectionReuse::ConnectionReuse() : state_(std::make_shared<State>()) {
  std::lock_guard lock(reuse_mu);
  reuse_now = state_;
}

ConnectionReuse::~ConnectionReuse() {
  {
    std::lock_guard lock(reuse_mu);
    if (reuse_now == state_) reuse_now.reset();
  }
  std::vector<ConnectHandle> left;
  {
    std::lock_guard lock(state_->mu);
    for (auto& [uri, pending] : state_->given) {
      if (!OpensAhead::get().remove(uri, pending)) continue;  // taken
      std::lock_guard open_lock(pending->mutex);
      pending->claimed = true;
      pending->listed.reset();  // its handles hold the connection: freed first (no call)
      left.push_back(std::move(pending->conn));
    }
  }
  // Closing one is a round trip (over ssh, an ssh session's end too): 32 at a time.
  std::atomic<std::size_t> next{0};
  auto close_some = [&] {
    for (std::size_t i = next++; i < left.size(); i = next++) left[i].reset();
  };
  {
    std::vector<std::jthread> closing;
    for (std::size_t t = 0; t < std::min<std::size_t>(left.size(), 32); ++t) {
      try {
        closing.emplace_back(close_some);
      } catch (const std::system_error&) {
        break;  // fewer threads: the others close the rest
      }
    }
  }
  close_some();  // whatever no thread got to
}

void give_back(const HostTarget& host, ConnectHandle conn, std::shared_ptr<ListedVolumes> listed) {
  if (!conn || virConnectIsAlive(conn.get()) != 1) return;  // closed here
  std::shared_ptr<ConnectionReuse::State> reuse;
  {
    std::lock_guard lock(reuse_mu);
    reuse = reuse_now;
  }
  if (!reuse) return;
  auto pending = std::make_shared<PendingOpen>();
  pending->started = true;
  pending->done = true;
  pending->conn = std::move(conn);
  pending->listed = std::move(listed);
  std::lock_guard lock(reuse->mu);
  reuse->given.emplace_back(host.uri, pending);
  OpensAhead::get().add(host.uri, std::move(pending));
}

OpenResult open_connection(const HostTarget& host, std::chrono::milliseconds timeout,
                           const Opener& opener, bool ahead) {
  ensure_libvirt_ready();
  // An empty URI would make libvirt guess one (LIBVIRT_DEFAULT_URI, then probing): never that.
  if (host.uri.empty()) return {nullptr, prefix(host) + "no URI — " + std::string(kUriCheck), 0};

  if (auto opened = ahead ? OpensAhead::get().take(host.uri) : nullptr) {
    std::unique_lock lock(opened->mutex);
    opened->claimed = true;
    if (std::string silent = ProcessConnections::get().still_silent(host); !silent.empty()) {
      opened->abandoned = true;  // the host did not answer another open: not waited for again
      opened->conn.reset();
      return {nullptr, std::move(silent), 0};
    }
    if (opened->started) {
      if (!opened->finished.wait_for(lock, timeout, [&] { return opened->done; })) {
        opened->abandoned = true;
        if (opened->slot) opened->slot->abandon(host, timeout);
        return {nullptr, describe_timeout(host, timeout), 1};
      }
      if (opened->conn) return {std::move(opened->conn), "", 2, std::move(opened->listed)};
    }
    // Not begun, or it failed: opened afresh below, and what that says is what is reported.
  }

  std::string refusal;
  auto& all = ProcessConnections::get();
  auto slot = all.take(host, &refusal);
  if (!slot) return {nullptr, refusal, 0};
  auto pending = std::make_shared<PendingOpen>();
  try {
    std::thread(run_open, pending, opener ? opener : Opener(default_opener), host.uri, slot)
        .detach();
  } catch (const std::system_error& e) {  // no thread to be had: say so, as this host's error
    return {nullptr,
            prefix(host) + "not tried: cannot start a thread to connect (" + e.what() + ")", 0};
  }

  std::unique_lock lock(pending->mutex);
  if (!pending->finished.wait_for(lock, timeout, [&] { return pending->done; })) {
    pending->abandoned = true;
    slot->abandon(host, timeout);
    return {nullptr, describe_timeout(host, timeout), 1};
  }
  if (!pending->conn) return {nullptr, describe_open_error(host, pending->error), 1};

  OpenResult result{std::move(pending->conn), "", 2};
  lock.unlock();
  keep_alive(result.conn.get());
  return result;
}

std::string domain_state_name(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "shutdown";  // shutting down
    case VIR_DOMAIN_SHUTOFF:
      return "shutoff";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "pmsuspended";
    default:
      return "nostate";
  }
}

}  // namespace kumo::libvirt
