// What kumo records on a libvirt host holds no credentials: a VM whose image URL carries
// user:password and a ?token= is defined on libvirt's test driver (in process) from the desired
// state the loader and expand make, and the domain's XML, as any read-only client reads it, is
// searched for the secrets.
#include <catch2/catch.hpp>

#include "planner/config/loader.h"
#include "planner/desired.h"
#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/session.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

const std::string kCluster = R"(
cluster: festival
hosts:
  hv1: {uri: "test:///default", pool: default-pool}
images:
  deb:
    url: "https://alice:s3cret@mirror.example/d/deb.qcow2?token=t0psecret"
    checksum_url: "https://alice:s3cret@mirror.example/d/SHA256SUMS?token=t0psecret"
vms:
  web: {image: deb, memory: 512MiB}
)";

DesiredCluster desired() {
  LoadOptions options;
  options.environment["HOME"] = "/home/test";
  auto loaded = load_config_text(kCluster, "kumo.yaml", "/tmp", options);
  REQUIRE(loaded.config);
  return expand(*loaded.config);
}

}  // namespace

TEST_CASE("a domain's kumo metadata names its image without the URL's secrets", "[session]") {
  const DesiredCluster d = desired();
  REQUIRE(d.vms.size() == 1);
  const DesiredVm& vm = d.vms.front();
  CHECK(vm.image_id == "https://mirror.example/d/deb.qcow2");
  CHECK(d.images.front().source ==
        "https://(redacted)@mirror.example/d/deb.qcow2?token=(redacted)");

  const auto session = make_libvirt_connector()->connect(d.hosts.front().target(), 5s);
  DomainSpec spec;
  spec.name = vm.instance;
  spec.vcpus = vm.cpus;
  spec.memory = vm.memory;
  spec.owner = Ownership{d.cluster, vm.address(), vm.spec_hash(), vm.spec(), true};
  session->define_domain(spec);

  ensure_libvirt_ready();
  const ConnectHandle side(virConnectOpenReadOnly("test:///default"));
  REQUIRE(side);
  const DomainHandle dom(virDomainLookupByName(side.get(), vm.instance.c_str()));
  REQUIRE(dom);
  const std::string xml = adopt_string(virDomainGetXMLDesc(dom.get(), 0));
  CHECK(xml.find("mirror.example/d/deb.qcow2") != std::string::npos);
  for (const char* secret : {"s3cret", "t0psecret", "alice", "token"}) {
    INFO(secret);
    CHECK(xml.find(secret) == std::string::npos);
  }
  session->delete_domain(spec.name);
}
