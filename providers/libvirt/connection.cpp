#include "providers/libvirt/connection.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include <libvirt/virterror.h>

#include "providers/redact.h"

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

// What a caller and its worker share; whoever finishes last frees it (shared_ptr).
struct PendingOpen {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  bool abandoned = false;
  ConnectHandle conn;
  LibvirtError error;
};

void run_open(const std::shared_ptr<PendingOpen>& pending, const Opener& opener,
              const std::string& uri) {
  ConnectHandle conn(opener(uri));
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
    virEventRegisterDefaultImpl();
    // Runs for the life of the process: libvirt offers no way to stop the default loop, and
    // keepalive on every connection depends on it.
    std::thread([] {
      for (;;) virEventRunDefaultImpl();
    }).detach();
  });
}

LibvirtError last_error() {
  const virErrorPtr error = virGetLastError();
  if (error == nullptr) return {0, "unknown libvirt error"};
  return {error->code, error->message != nullptr ? error->message : "unknown libvirt error"};
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
    const std::string socket = quoted_path(error.message);
    const std::string user = uri_user(host.uri);
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

OpenResult open_connection(const HostTarget& host, std::chrono::milliseconds timeout,
                           const Opener& opener) {
  ensure_libvirt_ready();
  // An empty URI would make libvirt guess one (LIBVIRT_DEFAULT_URI, then probing): never that.
  if (host.uri.empty()) return {nullptr, prefix(host) + "no URI — " + std::string(kUriCheck), 0};

  auto pending = std::make_shared<PendingOpen>();
  std::thread(run_open, pending, opener ? opener : Opener(default_opener), host.uri).detach();

  std::unique_lock lock(pending->mutex);
  if (!pending->finished.wait_for(lock, timeout, [&] { return pending->done; })) {
    pending->abandoned = true;
    return {nullptr, describe_timeout(host, timeout), 1};
  }
  if (!pending->conn) return {nullptr, describe_open_error(host, pending->error), 1};

  OpenResult result{std::move(pending->conn), "", 2};
  lock.unlock();
  // Keepalive makes a host that dies mid-observation fail within ~20s instead of hanging.
  // In-process drivers (test:///) refuse it, and need none.
  if (virConnectSetKeepAlive(result.conn.get(), 5, 3) < 0) virResetLastError();
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
