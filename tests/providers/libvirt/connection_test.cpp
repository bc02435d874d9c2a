#include "providers/libvirt/connection.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <libvirt/virterror.h>
#include <catch2/catch.hpp>

#include "providers/libvirt/libvirt_provider.h"
#include "test_support.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;
using kumo::testing::SilentSocket;

namespace {

HostTarget hv(const std::string& uri) {
  return {"hv1", uri, "default"};
}

}  // namespace

TEST_CASE("libvirt's connect errors map to what to check", "[connection]") {
  const HostTarget ssh{"hv2", "qemu+ssh://root@hv2/system", "default"};
  CHECK(describe_open_error(ssh, {VIR_ERR_SYSTEM_ERROR,
                                  "Cannot recv data: root@hv2: Permission denied "
                                  "(publickey,password).: Connection reset by peer"}) ==
        "host hv2 (qemu+ssh://root@hv2/system): authentication failed — is your key in root's "
        "authorized_keys?");
  CHECK(describe_open_error(ssh, {VIR_ERR_AUTH_FAILED, "authentication failed: no agent"}) ==
        "host hv2 (qemu+ssh://root@hv2/system): authentication failed — is your key in root's "
        "authorized_keys?");
  CHECK(describe_open_error(ssh, {VIR_ERR_SYSTEM_ERROR,
                                  "Cannot recv data: Host key verification failed.: Connection "
                                  "reset by peer"}) ==
        "host hv2 (qemu+ssh://root@hv2/system): host key verification failed — is the host's "
        "current key in your known_hosts (ssh to it once)?");
  CHECK(describe_open_error(ssh, {VIR_ERR_SYSTEM_ERROR,
                                  "Cannot recv data: ssh: Could not resolve hostname hv2: Name or "
                                  "service not known: Connection reset by peer"}) ==
        "host hv2 (qemu+ssh://root@hv2/system): unknown host name — is the name in DNS or "
        "/etc/hosts?");
  CHECK(describe_open_error(ssh, {VIR_ERR_SYSTEM_ERROR,
                                  "Cannot recv data: ssh: connect to host hv2 port 22: Connection "
                                  "refused: Connection reset by peer"}) ==
        "host hv2 (qemu+ssh://root@hv2/system): connection refused — is sshd (or libvirtd's "
        "TCP/TLS listener) running there?");
  CHECK(describe_open_error(ssh, {VIR_ERR_SYSTEM_ERROR,
                                  "Cannot recv data: ssh: connect to host hv2 port 22: No route "
                                  "to host: Connection reset by peer"}) ==
        "host hv2 (qemu+ssh://root@hv2/system): no route to host — is the host up and reachable?");

  const HostTarget local{"hv1", "qemu+unix:///system?socket=/x", "default"};
  CHECK(
      describe_open_error(local, {VIR_ERR_SYSTEM_ERROR,
                                  "Failed to connect socket to '/x': No such file or directory"}) ==
      "host hv1 (qemu+unix:///system?socket=/x): cannot connect to the libvirt socket /x — is "
      "libvirtd running there?");
  CHECK(describe_open_error(local, {VIR_ERR_SYSTEM_ERROR,
                                    "Failed to connect socket to '/x': Connection refused"}) ==
        "host hv1 (qemu+unix:///system?socket=/x): cannot connect to the libvirt socket /x — is "
        "libvirtd running there?");
  CHECK(describe_open_error(
            local, {VIR_ERR_SYSTEM_ERROR, "Failed to connect socket to '/x': Permission denied"}) ==
        "host hv1 (qemu+unix:///system?socket=/x): permission denied on the libvirt socket /x — "
        "is your user in the libvirt group?");
  CHECK(describe_open_error(local, {VIR_ERR_AUTH_UNAVAILABLE,
                                    "authentication unavailable: no "
                                    "polkit agent available"}) ==
        "host hv1 (qemu+unix:///system?socket=/x): authentication unavailable (polkit) — run kumo "
        "as root or add your user to the libvirt group");

  CHECK(describe_open_error(hv("qemu+ssh://hv1/system"), {VIR_ERR_AUTH_FAILED, "x"}) ==
        "host hv1 (qemu+ssh://hv1/system): authentication failed — is your key in the remote "
        "user's authorized_keys?");
  CHECK(describe_open_error(hv("bogus://x/"), {VIR_ERR_NO_CONNECT,
                                               "no connection driver available for bogus://x/"}) ==
        "host hv1 (bogus://x/): no libvirt driver for this URI — check the host's uri in "
        "kumo.yaml (e.g. qemu+ssh://root@hv1/system)");
  // Anything else keeps libvirt's own words.
  CHECK(describe_open_error(hv("qemu:///system"), {VIR_ERR_INTERNAL_ERROR, "odd failure"}) ==
        "host hv1 (qemu:///system): cannot connect: odd failure — is libvirtd running there?");
  CHECK(describe_timeout(hv("qemu+ssh://hv1/system"), 10s) ==
        "host hv1 (qemu+ssh://hv1/system): timed out after 10s — is the host up and reachable?");
}

TEST_CASE("no KVM is explained in libvirt's words where it gives them, with what to check",
          "[connection]") {
  const std::string check =
      " — check that /dev/kvm exists there, VT-x/AMD-V is enabled in its firmware, and the "
      "kvm_intel or kvm_amd module is loaded";
  CHECK(describe_no_kvm("x86_64",
                        "invalid argument: KVM is not supported by "
                        "'/usr/bin/qemu-system-x86_64' on this host") ==
        "KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host" + check);
  CHECK(describe_no_kvm("x86_64", "") == "libvirt offers no KVM guests for x86_64 there" + check);
  CHECK(describe_no_kvm("", "") == "libvirt offers no KVM guests there" + check);
}

TEST_CASE("a host not tried for want of descriptors says why and what to do", "[connection]") {
  CHECK(describe_no_budget(hv("qemu+tcp://hv1/system"), 224, 224, 224) ==
        "host hv1 (qemu+tcp://hv1/system): not tried: 224 earlier connections to hosts that never "
        "answered still hold file descriptors (at most 224 connections under this process's limit "
        "of open files) — make the hosts that timed out answer or take them out of kumo.yaml, or "
        "raise the limit (ulimit -n)");
  CHECK(describe_no_budget(hv("qemu+tcp://hv1/system"), 224, 0, 224) ==
        "host hv1 (qemu+tcp://hv1/system): not tried: 224 open libvirt connections hold file "
        "descriptors (at most 224 connections under this process's limit of open files) — make "
        "the hosts that timed out answer or take them out of kumo.yaml, or raise the limit "
        "(ulimit -n)");
}

TEST_CASE("passwords in URIs never reach a message", "[connection]") {
  CHECK(redact_uri("qemu+ssh://root:hunter2@hv1/system") ==
        "qemu+ssh://root:(redacted)@hv1/system");
  CHECK(redact_uri("qemu+ssh://root@hv1/system") == "qemu+ssh://root@hv1/system");
  CHECK(redact_uri("qemu+ssh://hv1:2222/system") == "qemu+ssh://hv1:2222/system");
  CHECK(redact_uri("qemu:///system?socket=/a@b") == "qemu:///system?socket=/a@b");
  CHECK(
      describe_timeout(hv("qemu+ssh://u:pw@hv1/system"), 1500ms) ==
      "host hv1 (qemu+ssh://u:(redacted)@hv1/system): timed out after 1500ms — is the host up and "
      "reachable?");
}

TEST_CASE("a sensitive URI's parts never reach a message: not its socket, not its user",
          "[connection]") {
  HostTarget secret = hv("qemu+unix:///system?socket=/run/secret-sock");
  secret.uri_sensitive = true;
  CHECK(describe_open_error(secret, {VIR_ERR_SYSTEM_ERROR,
                                     "Failed to connect socket to '/run/secret-sock': No such "
                                     "file or directory"}) ==
        "host hv1: cannot connect to the libvirt socket (sensitive) — is libvirtd running there?");
  secret.uri = "qemu+ssh://secret-user@hv1/system";
  CHECK(describe_open_error(secret, {VIR_ERR_AUTH_FAILED, "authentication failed"}) ==
        "host hv1: authentication failed — is your key in the remote user's authorized_keys?");
}

TEST_CASE("a missing libvirt socket fails fast with the socket named", "[connection]") {
  const auto result = open_connection(hv("qemu+unix:///system?socket=/nonexistent/sock"), 5s);
  CHECK_FALSE(result.conn);
  CHECK(result.error ==
        "host hv1 (qemu+unix:///system?socket=/nonexistent/sock): cannot connect to the libvirt "
        "socket /nonexistent/sock — is libvirtd running there?");
}

TEST_CASE("a malformed or empty URI is reported, not guessed", "[connection]") {
  CHECK(open_connection(hv("not a uri"), 5s).error ==
        "host hv1 (not a uri): malformed URI — check the host's uri in kumo.yaml (e.g. "
        "qemu+ssh://root@hv1/system)");
  CHECK(
      open_connection(hv(""), 5s).error ==
      "host hv1 (): no URI — check the host's uri in kumo.yaml (e.g. qemu+ssh://root@hv1/system)");
}

TEST_CASE("a host that never answers times out, and its opener finishes later", "[connection]") {
  SilentSocket silent;
  const std::string uri = "qemu+unix:///system?socket=" + silent.path();
  // libvirt's own opener, plus a signal when it returns. Shared: the worker outlives the call.
  auto returned = std::make_shared<std::promise<bool>>();
  const Opener watched = [returned](const std::string& u) {
    virConnectPtr conn = virConnectOpenAuth(u.c_str(), virConnectAuthPtrDefault, 0);
    returned->set_value(conn != nullptr);
    return conn;
  };

  const auto start = std::chrono::steady_clock::now();
  const auto result = open_connection(hv(uri), 300ms, watched);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(result.conn);
  CHECK(result.error ==
        "host hv1 (" + uri + "): timed out after 300ms — is the host up and reachable?");
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 2s);

  auto opener_done = returned->get_future();
  CHECK(opener_done.wait_for(0s) == std::future_status::timeout);  // still waiting for an answer
  silent.close();  // the queued connection is reset: the open fails and the worker ends
  REQUIRE(opener_done.wait_for(5s) == std::future_status::ready);
  CHECK_FALSE(opener_done.get());
}

TEST_CASE("a connection that arrives after the timeout is closed by its opener", "[connection]") {
  // test:///default keeps its objects only while a connection to it is open. The late connection
  // leaves a mark there; once a fresh connection no longer finds it, the worker closed its own.
  struct Shared {  // outlives the test if the worker does
    std::atomic<bool> release = false;
    std::promise<void> marked;
  };
  auto shared = std::make_shared<Shared>();
  const Opener slow = [shared](const std::string& uri) {
    while (!shared->release) std::this_thread::sleep_for(5ms);
    virConnectPtr conn = virConnectOpen(uri.c_str());
    NetworkHandle mark(virNetworkCreateXML(conn, "<network><name>late</name></network>"));
    shared->marked.set_value();
    return conn;
  };
  const auto result = open_connection(hv("test:///default"), 50ms, slow);
  CHECK(result.error ==
        "host hv1 (test:///default): timed out after 50ms — is the host up and reachable?");
  shared->release = true;
  REQUIRE(shared->marked.get_future().wait_for(5s) == std::future_status::ready);

  bool closed = false;
  for (const auto deadline = std::chrono::steady_clock::now() + 5s;
       !closed && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(5ms)) {
    ConnectHandle probe(virConnectOpen("test:///default"));
    closed = !NetworkHandle(virNetworkLookupByName(probe.get(), "late"));
  }
  CHECK(closed);
}

TEST_CASE("a reachable host opens with its call count", "[connection]") {
  const auto result = open_connection(hv("test:///default"), 5s);
  REQUIRE(result.conn);
  CHECK(result.error.empty());
  CHECK(result.api_calls == 2);  // open + keepalive (refused by the test driver, harmlessly)
}

TEST_CASE("opens abandoned at their timeout count against the descriptor budget until they end",
          "[connection]") {
  // 128 descriptors are kept for everything else, 4 per connection: room for 4 connections.
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 128 + 4 * 4;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  CHECK(connection_budget() == 4);

  SilentSocket silent;
  const std::string uri = "qemu+unix:///system?socket=" + silent.path();
  auto silent_host = [&](int i) { return HostTarget{"s" + std::to_string(i), uri, "default"}; };
  for (int i = 0; i < 4; ++i) {
    CHECK(open_connection(silent_host(i), 50ms).error ==
          "host s" + std::to_string(i) + " (" + uri +
              "): timed out after 50ms — is the host up and reachable?");
  }
  const auto start = std::chrono::steady_clock::now();
  CHECK_THAT(open_connection(silent_host(4), 5s).error,
             Catch::StartsWith("host s4 (" + uri +
                               "): not tried: 4 earlier connections to hosts that never answered"));
  CHECK_FALSE(open_connection(hv("test:///default"), 5s).conn);  // no room, even for this one
  // A host whose open still waits is not tried again (it would only hold more descriptors).
  CHECK(open_connection(silent_host(0), 5s).error ==
        "host s0 (" + uri +
            "): timed out after 50ms earlier in this run and has still not answered — is the host "
            "up and reachable?");
  CHECK(std::chrono::steady_clock::now() - start < 50ms);  // all three at once

  silent.close();  // the abandoned opens fail, their workers end, and give their places back
  bool back = false;
  for (const auto deadline = std::chrono::steady_clock::now() + 5s;
       !back && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(5ms)) {
    back = static_cast<bool>(open_connection(hv("test:///default"), 5s).conn);
  }
  CHECK(back);
  CHECK_THAT(open_connection(silent_host(0), 5s).error,  // tried again: its socket is gone now
             Catch::Contains("cannot connect to the libvirt socket"));
  setrlimit(RLIMIT_NOFILE, &saved);
}

namespace {

// An opener for opens ahead that records what it opened, and can be held back.
struct AheadOpener {
  struct Shared {  // outlives the test if a worker does
    std::mutex mu;
    std::vector<virConnectPtr> opened;
    std::atomic<int> calls = 0;
    std::atomic<bool> hold = false;
    bool fail = false;
  };
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  Opener opener() const {
    return [shared = shared](const std::string& uri) -> virConnectPtr {
      ++shared->calls;
      while (shared->hold) std::this_thread::sleep_for(2ms);
      if (shared->fail) return nullptr;
      virConnectPtr conn = virConnectOpen(uri.c_str());
      const std::lock_guard lock(shared->mu);
      shared->opened.push_back(conn);
      return conn;
    };
  }
  bool opened(virConnectPtr conn) const {
    const std::lock_guard lock(shared->mu);
    return std::find(shared->opened.begin(), shared->opened.end(), conn) != shared->opened.end();
  }
  // Waits (up to 5 s) until `n` opens have been asked for.
  bool wait_calls(int n) const {
    for (const auto deadline = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(2ms)) {
      if (shared->calls >= n) return true;
    }
    return false;
  }
};

}  // namespace

TEST_CASE("opens ahead are taken by the next opens of their URI, one each", "[connection]") {
  AheadOpener ahead;
  const HostTarget host{"ahead1", "test:///default", "default"};
  OpenAhead opens({host}, 2, 4, ahead.opener());
  CHECK(opens.size() == 2);
  REQUIRE(ahead.wait_calls(2));

  const auto first = open_connection(host, 5s);
  const auto second = open_connection(host, 5s);
  REQUIRE(first.conn);
  REQUIRE(second.conn);
  CHECK(first.error.empty());
  CHECK(first.conn.get() != second.conn.get());  // never shared
  CHECK(ahead.opened(first.conn.get()));
  CHECK(ahead.opened(second.conn.get()));
  const auto third = open_connection(host, 5s);  // none left: opened afresh
  REQUIRE(third.conn);
  CHECK_FALSE(ahead.opened(third.conn.get()));
  CHECK(ahead.shared->calls == 2);
}

TEST_CASE("an open ahead that failed or never began is opened afresh", "[connection]") {
  const HostTarget host{"ahead2", "test:///default", "default"};
  AheadOpener failing;
  failing.shared->fail = true;
  OpenAhead failed({host}, 1, 1, failing.opener());
  REQUIRE(failing.wait_calls(1));
  std::this_thread::sleep_for(20ms);  // its worker has reported the failure
  const auto result = open_connection(host, 5s);
  REQUIRE(result.conn);  // libvirt's own opener, afresh
  CHECK(result.error.empty());

  // One worker, held on the first host's open: the second host's has not begun when it is
  // taken, so it is opened afresh (and fails as such an open does), never by the opener.
  AheadOpener held;
  held.shared->hold = true;
  const HostTarget gone{"ahead2b", "qemu+unix:///system?socket=/nonexistent/kumo-sock", "default"};
  OpenAhead queued({host, gone}, 1, 1, held.opener());
  REQUIRE(held.wait_calls(1));
  CHECK_THAT(open_connection(gone, 5s).error,
             Catch::Contains("cannot connect to the libvirt socket /nonexistent/kumo-sock"));
  held.shared->hold = false;
  std::this_thread::sleep_for(50ms);
  CHECK(held.shared->calls == 1);
  const auto first = open_connection(host, 5s);  // the one that was held, now open
  REQUIRE(first.conn);
  CHECK(held.opened(first.conn.get()));
}

TEST_CASE("an open ahead its taker waits for is bounded by the taker's timeout", "[connection]") {
  const HostTarget host{"ahead3", "test:///default", "default"};
  AheadOpener held;
  held.shared->hold = true;
  {
    OpenAhead opens({host}, 1, 1, held.opener());
    REQUIRE(held.wait_calls(1));
    const auto start = std::chrono::steady_clock::now();
    const auto result = open_connection(host, 100ms);
    CHECK_FALSE(result.conn);
    CHECK(result.error ==
          "host ahead3 (test:///default): timed out after 100ms — is the host up and reachable?");
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    // Like any open that timed out, the host is not tried again while it has not answered.
    CHECK_THAT(open_connection(host, 5s).error,
               Catch::Contains("earlier in this run and has still not answered"));
  }
  held.shared->hold = false;  // it answers at last: its worker closes what it got
  bool back = false;
  for (const auto deadline = std::chrono::steady_clock::now() + 5s;
       !back && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(5ms)) {
    back = static_cast<bool>(open_connection(host, 5s).conn);
  }
  CHECK(back);
}

TEST_CASE("opens ahead that nobody took are never begun, and the host's silence is respected",
          "[connection]") {
  const HostTarget host{"ahead4", "test:///default", "default"};
  AheadOpener held;
  held.shared->hold = true;
  {
    OpenAhead opens({host}, 3, 1, held.opener());  // one worker: one begun, two queued
    REQUIRE(held.wait_calls(1));
  }  // gone before any was taken
  held.shared->hold = false;
  std::this_thread::sleep_for(50ms);
  CHECK(held.shared->calls == 1);                 // the queued ones never began
  const auto result = open_connection(host, 5s);  // and none is left to take
  REQUIRE(result.conn);
  CHECK_FALSE(held.opened(result.conn.get()));
}

TEST_CASE("opens ahead leave half the descriptor budget to the opens that are needed",
          "[connection]") {
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 128 + 4 * 4;  // room for 4 connections
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  {
    const HostTarget host{"ahead5", "test:///default", "default"};
    AheadOpener ahead;
    OpenAhead opens({host}, 4, 4, ahead.opener());
    std::this_thread::sleep_for(100ms);
    CHECK(ahead.shared->calls == 2);  // two begun; two found no room and were left to takers
    std::vector<OpenResult> all;
    for (int i = 0; i < 4; ++i) all.push_back(open_connection(host, 5s));
    int taken = 0;
    for (const auto& r : all) {
      REQUIRE(r.conn);
      taken += ahead.opened(r.conn.get()) ? 1 : 0;
    }
    CHECK(taken == 2);
  }
  setrlimit(RLIMIT_NOFILE, &saved);
}

TEST_CASE("an open not among the uses opened ahead (the lock's) never takes one", "[connection]") {
  const HostTarget host{"ahead6", "test:///default", "default"};
  AheadOpener ahead;
  OpenAhead opens({host}, 1, 1, ahead.opener());
  REQUIRE(ahead.wait_calls(1));
  const auto lock = open_connection(host, 5s, {}, false);
  REQUIRE(lock.conn);
  CHECK_FALSE(ahead.opened(lock.conn.get()));
  const auto plan = open_connection(host, 5s);  // still there for its use
  REQUIRE(plan.conn);
  CHECK(ahead.opened(plan.conn.get()));
}

TEST_CASE("a connection given back is the next open's of its URI while reuse lives",
          "[connection]") {
  const HostTarget host{"reuse1", "test:///default", "default"};
  AheadOpener opener;
  std::optional<ConnectionReuse> reuse(std::in_place);
  auto first = open_connection(host, 5s, opener.opener());
  REQUIRE(first.conn);
  virConnectPtr raw = first.conn.get();
  give_back(host, std::move(first.conn));
  const auto again = open_connection(host, 5s, opener.opener());
  CHECK(again.conn.get() == raw);  // taken over, not opened
  CHECK(again.error.empty());
  CHECK(opener.shared->calls == 1);
  const auto other = open_connection(host, 5s, opener.opener());  // one taker each
  REQUIRE(other.conn);
  CHECK(other.conn.get() != raw);
  CHECK(opener.shared->calls == 2);
  // Not taken before the reuse ends: closed then, and the next open opens.
  auto third = open_connection(host, 5s, opener.opener());
  give_back(host, std::move(third.conn));
  reuse.reset();
  CHECK(open_connection(host, 5s, opener.opener()).conn);
  CHECK(opener.shared->calls == 4);
}

TEST_CASE("without reuse, a connection given back is closed", "[connection]") {
  const HostTarget host{"reuse2", "test:///default", "default"};
  AheadOpener opener;
  auto first = open_connection(host, 5s, opener.opener());
  REQUIRE(first.conn);
  give_back(host, std::move(first.conn));
  CHECK(open_connection(host, 5s, opener.opener()).conn);
  CHECK(opener.shared->calls == 2);
}

TEST_CASE("an open takes a connection given back before one still opening ahead", "[connection]") {
  const HostTarget host{"reuse3", "test:///default", "default"};
  ConnectionReuse reuse;
  AheadOpener ahead;
  ahead.shared->hold = true;
  OpenAhead opens({host}, 1, 1, ahead.opener());
  REQUIRE(ahead.wait_calls(1));  // begun, held back
  auto done = open_connection(host, 5s, {}, false);
  virConnectPtr raw = done.conn.get();
  give_back(host, std::move(done.conn));
  const auto taken = open_connection(host, 5s);
  CHECK(taken.conn.get() == raw);  // no wait for the one still opening
  ahead.shared->hold = false;
}

TEST_CASE("a host's read hands its connection on to the next open of that host while reuse lives",
          "[connection]") {
  const HostTarget host{"reuse4", "test:///default", "default"};
  ConnectionReuse reuse;
  const ObservedHost read = make_libvirt_provider()->observe(host, 5s);
  REQUIRE(read.reachable);
  AheadOpener opener;
  const auto steps = open_connection(host, 5s, opener.opener());
  REQUIRE(steps.conn);
  CHECK(opener.shared->calls == 0);  // the read's connection, not a new one
}
