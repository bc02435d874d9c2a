#include "providers/ownership.h"

#include <catch2/catch.hpp>

using namespace kumo;

TEST_CASE("reserved names round-trip to ownership", "[ownership]") {
  CHECK(network_name("festival", "front") == "kumo_festival_front");
  CHECK(network_owner("kumo_festival_front") ==
        Ownership{"festival", "network.front", "", std::nullopt});
  CHECK(network_owner("kumo_festival_back_net") ==
        Ownership{"festival", "network.back_net", "", std::nullopt});
  CHECK_FALSE(network_owner("default").has_value());
  CHECK_FALSE(network_owner("kumo_").has_value());
  CHECK_FALSE(network_owner("kumo_festival_").has_value());

  CHECK(root_volume_name("festival", "web-0") == "kumo_festival_web-0_root.qcow2");
  CHECK(volume_owner("kumo_festival_web-0_root.qcow2")->address == "volume.web-0/root");
  CHECK(volume_owner(seed_volume_name("c", "db"))->address == "volume.db/seed");
  CHECK(volume_owner(data_volume_name("c", "db", "pg_data"))->address == "volume.db/data/pg_data");
  CHECK(volume_owner(data_volume_name("c", "db", "pg_data"))->cluster == "c");
  CHECK_FALSE(volume_owner("kumo_c_db_other.qcow2").has_value());
  CHECK_FALSE(volume_owner("debian-12.qcow2").has_value());

  const auto img = image_volume_name("sha256", "ab12");
  CHECK(img == "kumo-image_sha256-ab12");
  CHECK(image_marker_name(img) == "kumo-image_sha256-ab12.done");
  CHECK(volume_owner(image_marker_name(img))->address == "image.sha256-ab12/done");
  CHECK(volume_owner(img)->address == "image.sha256-ab12");
  CHECK(serial_log_name("fest", "web-0") == "kumo_fest_web-0_serial.log");
  CHECK(volume_owner("kumo_fest_web-0_serial.log")->address == "volume.web-0/serial");
  CHECK(is_serial_log("kumo_fest_web-0_serial.log"));
  CHECK_FALSE(is_serial_log("kumo_fest_web-0_root.qcow2"));
  CHECK_FALSE(is_serial_log("notes_serial.log"));  // not kumo's
  CHECK_FALSE(is_serial_log(img));
  CHECK(volume_owner(img) == Ownership{"", "image.sha256-ab12", "", std::nullopt});
  CHECK(is_seed_volume(seed_volume_name("fest", "web-0")));
  CHECK_FALSE(is_seed_volume("notes_seed.iso"));  // not kumo's
  CHECK_FALSE(is_seed_volume(root_volume_name("fest", "web-0")));
  CHECK_FALSE(is_seed_volume(serial_log_name("fest", "web-0")));
}

TEST_CASE("a data disk named like a role of kumo's own is still a data disk", "[ownership]") {
  // Only root and seed are refused as disk names; a disk may be called serial, nvram or done.
  for (const char* disk : {"serial", "seed", "nvram", "done", "root"}) {
    const auto name = data_volume_name("fest", "web-0", disk);
    INFO(name);
    CHECK(volume_owner(name)->address == std::string("volume.web-0/data/") + disk);
    CHECK_FALSE(is_serial_log(name));
    CHECK_FALSE(is_seed_volume(name));
    CHECK_FALSE(is_bookkeeping_volume(name));  // a disk the user asked for: shown, planned
  }
}

TEST_CASE("domain metadata carries ownership and the spec", "[ownership]") {
  VmRecord record;
  record.cpus = 2;
  record.group = "1 GiB & more";
  Ownership owner{"festival", "vm.web-0", "abc123", record};
  const std::string xml = "<domain type='kvm'><name>web-0</name><metadata>" +
                          owner_metadata_xml(owner) +
                          "<other:thing xmlns:other='urn:other'/></metadata></domain>";
  auto parsed = parse_owner_from_domain_xml(xml);
  REQUIRE(parsed.has_value());
  CHECK(*parsed == owner);
  CHECK_FALSE(parsed->ready);
  owner.ready = true;  // seen ready since this definition
  parsed = parse_owner_from_domain_xml("<domain><metadata>" + owner_metadata_xml(owner) +
                                       "</metadata></domain>");
  REQUIRE(parsed.has_value());
  CHECK(parsed->ready);
  CHECK(*parsed == owner);
  // Another tool's metadata, or none, is not ownership.
  CHECK_FALSE(parse_owner_from_domain_xml(
      "<domain><metadata><x:owner xmlns:x='urn:x'><x:cluster>c</x:cluster>"
      "<x:address>vm.a</x:address></x:owner></metadata></domain>"));
  CHECK_FALSE(parse_owner_from_domain_xml("<domain><name>a</name></domain>"));
  CHECK_FALSE(parse_owner_from_domain_xml("not xml"));
  // A different prefix bound to kumo's namespace is still kumo's.
  CHECK(parse_owner_from_domain_xml(
            "<domain><metadata><k:owner xmlns:k='urn:kumo:owner:1'><k:cluster>c</k:cluster>"
            "<k:address>vm.a</k:address></k:owner></metadata></domain>")
            ->address == "vm.a");
}

TEST_CASE("a network record names the network and its UUID, and is read back", "[ownership]") {
  const std::string uuid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
  CHECK(network_record_name("fest", "front", uuid) == "kumo-net_fest_front_" + uuid);
  CHECK(network_record(network_record_name("fest", "front", uuid), "fest") ==
        NetworkRecord{"front", uuid});
  // Network names may have '_'; UUIDs never do.
  CHECK(network_record(network_record_name("fest", "back_net", uuid), "fest") ==
        NetworkRecord{"back_net", uuid});
  CHECK_FALSE(network_record(network_record_name("fest", "front", uuid), "fes"));
  CHECK_FALSE(network_record(network_record_name("fest", "front", uuid), "fest2"));
  CHECK_FALSE(network_record("kumo-net_fest_" + uuid, "fest"));  // no network name
  CHECK_FALSE(network_record("kumo-net_fest_front_", "fest"));
  CHECK_FALSE(network_record("kumo_fest_front", "fest"));
  CHECK_FALSE(network_record("kumo-lock_fest", "fest"));

  std::vector<ObservedVolume> volumes(3);
  volumes[0].pool = "default";
  volumes[0].name = network_record_name("fest", "front", uuid);
  volumes[1].pool = "other";  // another pool: not the host's kumo pool
  volumes[1].name = network_record_name("fest", "back", uuid);
  volumes[2].pool = "default";
  volumes[2].name = network_record_name("other", "front", uuid);  // another cluster's
  CHECK(network_records(volumes, "default", "fest") == std::set<NetworkRecord>{{"front", uuid}});
}

TEST_CASE("kumo's bookkeeping volumes are told from objects", "[ownership]") {
  for (const std::string& name :
       {lock_volume_name("fest"), lock_volume_name("fest") + ".takeover-0123456789abcdef",
        network_record_name("fest", "front", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
        image_marker_name(image_volume_name("sha256", "ab12")), serial_log_name("fest", "web-0")}) {
    INFO(name);
    CHECK(is_bookkeeping_volume(name));
  }
  for (const std::string& name :
       {root_volume_name("fest", "web-0"), seed_volume_name("fest", "web-0"),
        data_volume_name("fest", "web-0", "pg"), image_volume_name("sha256", "ab12"),
        std::string("debian-12.qcow2")}) {
    INFO(name);
    CHECK_FALSE(is_bookkeeping_volume(name));
  }
}
