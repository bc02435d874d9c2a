// Where a libvirt session's streams run (providers/libvirt/session.h): on connections of their
// own, never beside other calls on the session's, except in line for the lock's sessions. The
// test driver has no streams (virStorageVolUpload, virStorageVolDownload fail as unsupported),
// but a stream's connection is leased and its volume looked up before that failure.
#include <sys/resource.h>

#include <functional>

#include <catch2/catch.hpp>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/session_impl.h"
#include "test_support.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;
using kumo::testing::host_error;

namespace {

const HostTarget kHost{"hv1", "test:///default", "default-pool"};
const std::string kLabel = "host hv1 (test:///default): ";

struct Opened {
  std::unique_ptr<HostSession> session;
  LibvirtSession* libvirt = nullptr;
};

Opened open_session(Streams streams) {
  Opened o;
  o.session = make_libvirt_connector(streams)->connect(kHost, 5s);
  o.libvirt = dynamic_cast<LibvirtSession*>(o.session.get());
  REQUIRE(o.libvirt != nullptr);
  return o;
}

}  // namespace

TEST_CASE("a session's streams run on a connection of their own, reused from one to the next",
          "[session]") {
  const auto o = open_session(Streams::Apart);
  CHECK(o.libvirt->stream_connections_opened() == 0);
  const ByteReader none = [](char*, std::size_t) -> std::size_t { return 0; };
  CHECK(host_error([&] { o.session->upload_volume("up.raw", 1u << 20, none, {}); }) ==
        kLabel +
            "uploading to volume up.raw in storage pool \"default-pool\" failed: this function is "
            "not supported by the connection driver: virStorageVolUpload");
  CHECK(o.libvirt->stream_connections_opened() == 1);
  CHECK_FALSE(o.session->volume("up.raw"));  // nothing half-made is left

  o.session->create_volume({"data.raw", 1u << 20, "raw", "", ""});
  CHECK(host_error([&] { o.session->read_volume("data.raw", 0, 512); }) ==
        kLabel +
            "reading volume data.raw in storage pool \"default-pool\" failed: this function is not "
            "supported by the connection driver: virStorageVolDownload");
  CHECK(host_error([&] { o.session->read_volume("missing.raw", 0, 512); }) ==
        kLabel +
            "reading volume missing.raw in storage pool \"default-pool\" failed: it does not "
            "exist");
  CHECK(o.libvirt->stream_connections_opened() == 1);  // the same one, each time

  // Two streams at once: two connections, neither the session's own; both kept for later.
  {
    const auto a = o.libvirt->lease_stream("a");
    const auto b = o.libvirt->lease_stream("b");
    CHECK(a->conn() != o.libvirt->connection());
    CHECK(b->conn() != o.libvirt->connection());
    CHECK(a->conn() != b->conn());
    CHECK(o.libvirt->stream_connections_opened() == 2);
  }
  {
    const auto a = o.libvirt->lease_stream("a");
    const auto b = o.libvirt->lease_stream("b");
    CHECK(o.libvirt->stream_connections_opened() == 2);
  }
  CHECK_FALSE(o.session->volume("missing.raw"));
  o.session->delete_volume("data.raw");
}

TEST_CASE("a session one thread uses (the lock's) keeps its streams on its own connection",
          "[session]") {
  const auto o = open_session(Streams::InLine);
  const auto lease = o.libvirt->lease_stream("x");
  CHECK(lease->conn() == o.libvirt->connection());
  const ByteReader none = [](char*, std::size_t) -> std::size_t { return 0; };
  CHECK_THAT(host_error([&] { o.session->upload_volume("up.raw", 1u << 20, none, {}); }),
             Catch::Contains("virStorageVolUpload"));
  CHECK(o.libvirt->stream_connections_opened() == 0);
}

TEST_CASE("a lock's session lends its connection to the next open of its host, then streams apart",
          "[session]") {
  const auto o = open_session(Streams::InLine);
  {
    ConnectionReuse reuse;
    o.session->lend_connection();
    const auto reader = open_connection(kHost, 5s);
    CHECK(reader.conn.get() == o.libvirt->connection());  // shared, not opened
    // Another may be calling on it now: the session's streams no longer run there.
    const auto lease = o.libvirt->lease_stream("x");
    CHECK(lease->conn() != o.libvirt->connection());
    CHECK(o.libvirt->stream_connections_opened() == 1);
  }
  CHECK(o.session->pool("default-pool"));  // still the session's, after the reader let go
}

TEST_CASE("a stream whose connection cannot be opened says so, and leaves nothing behind",
          "[session]") {
  const auto o = open_session(Streams::Apart);
  // Held leases leave no idle connection; a budget of none makes the next open fail.
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 128 + 4;  // room for one connection: the session's
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  const ByteReader none = [](char*, std::size_t) -> std::size_t { return 0; };
  const std::string error =
      host_error([&] { o.session->upload_volume("up.raw", 1u << 20, none, {}); });
  setrlimit(RLIMIT_NOFILE, &saved);
  CHECK_THAT(error,
             Catch::StartsWith(kLabel + "uploading to volume up.raw in storage pool "
                                        "\"default-pool\" failed: no connection for its stream: "
                                        "host hv1 (test:///default): not tried:"));
  CHECK_FALSE(o.session->volume("up.raw"));
}
