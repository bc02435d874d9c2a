// The cluster lock's records (HostSession::create_lock_record and the rest) on libvirt. On a host
// with a secret driver they are secrets (e2e.fault and e2e.pools check that on the lab's real
// libvirtds); libvirt's test driver has none, so there the session keeps them as volumes of its
// pool, as any host without one does. Their XML is checked here as a pure builder and parser.
#include <catch2/catch.hpp>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/session.h"
#include "providers/libvirt/xml_build.h"
#include "providers/libvirt/xml_parse.h"
#include "test_support.h"

using namespace kumo;
using namespace kumo::libvirt;
using Catch::Matchers::StartsWith;
using kumo::testing::host_error;

namespace {

const HostTarget kHost{"hv1", "test:///default", "default-pool"};
const std::string kLabel = "host hv1 (test:///default): ";

std::unique_ptr<HostSession> open_session() {
  return make_libvirt_connector()->connect(kHost, std::chrono::seconds(5));
}

}  // namespace

TEST_CASE("a lock record's secret XML: usage by name, text in the description, no value",
          "[xml_build]") {
  const std::string text = R"({"user":"alice","machine":"<ci & 1>","token":"t"})";
  const std::string xml = lock_secret_xml("kumo-lock_fest", text);
  CHECK(xml ==
        "<secret ephemeral=\"no\" private=\"yes\">\n"
        "  <description>{\"user\":\"alice\",\"machine\":\"&lt;ci &amp; 1&gt;\",\"token\":\"t\"}"
        "</description>\n"
        "  <usage type=\"volume\">\n"
        "    <volume>kumo-lock_fest</volume>\n"
        "  </usage>\n"
        "</secret>\n");
  // What libvirt gives back (a UUID added) reads as the same text.
  const std::string back =
      "<secret ephemeral='no' private='yes'>\n  <uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid>\n"
      "  <description>{&quot;user&quot;:&quot;alice&quot;,&quot;machine&quot;:&quot;&lt;ci &amp; "
      "1&gt;&quot;,&quot;token&quot;:&quot;t&quot;}</description>\n  <usage type='volume'>\n"
      "    <volume>kumo-lock_fest</volume>\n  </usage>\n</secret>\n";
  CHECK(parse_lock_secret_xml(back) == text);
  CHECK(parse_lock_secret_xml(xml) == text);
  CHECK(parse_lock_secret_xml("<secret ephemeral='no'/>") == "");  // no description: no holder
  CHECK_FALSE(parse_lock_secret_xml("<volume/>"));
  CHECK_FALSE(parse_lock_secret_xml("not xml <"));
}

TEST_CASE("without a secret driver, lock records are volumes of the session's pool", "[session]") {
  const auto session = open_session();
  const std::string name = "kumo-lock_festival";
  CHECK_FALSE(session->read_lock_record(name, 4096));
  CHECK_FALSE(session->lock_record_stamp(name));
  session->delete_lock_record(name);  // none: nothing to do

  // One there (made as a volume): creating it again is refused, it has a stamp, it goes.
  session->create_volume({name, 0, "raw", "", ""});
  CHECK_FALSE(session->create_lock_record(name, "{\"token\": \"x\"}"));
  const auto stamp = session->lock_record_stamp(name);
  REQUIRE(stamp);
  CHECK(*stamp == session->volume(name)->changed);
  session->delete_lock_record(name);
  CHECK_FALSE(session->volume(name));
  CHECK_FALSE(session->lock_record_stamp(name));

  // A new one needs a stream for its text, which the test driver lacks: the failure is clean
  // and leaves nothing behind.
  CHECK_THAT(host_error([&] { session->create_lock_record("kumo-lock_other", "{}"); }),
             StartsWith(kLabel + "writing volume kumo-lock_other in storage pool"));
  CHECK_FALSE(session->volume("kumo-lock_other"));
  CHECK_FALSE(session->lock_record_stamp("kumo-lock_other"));
}
