#include "providers/images/checksum_list.h"

#include <catch2/catch.hpp>

#include "providers/images/source.h"

using namespace kumo;
using namespace kumo::images;

TEST_CASE("checksum lists: GNU text and binary lines, BSD lines, junk skipped", "[images]") {
  const std::string a(64, 'a'), b(128, 'B'), c(64, 'c');
  const auto entries =
      parse_checksum_list("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + a +
                          "  ./one.qcow2\r\n" + b + " *two.raw\n" + "SHA256 (three.img) = " + c +
                          "\n" + "d41d8cd98f00b204e9800998ecf8427e  md5.txt\n");
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].name == "one.qcow2");
  CHECK(entries[0].checksum == Checksum{ChecksumAlgo::Sha256, a});
  CHECK(entries[1].name == "two.raw");
  CHECK(entries[1].checksum == Checksum{ChecksumAlgo::Sha512, std::string(128, 'b')});
  CHECK(entries[2].name == "three.img");
  CHECK(entries[2].checksum == Checksum{ChecksumAlgo::Sha256, c});
}

TEST_CASE("checksum lists: a missing name says what is listed", "[images]") {
  std::string error;
  CHECK_FALSE(checksum_for("", "x.qcow2", "web", "SUMS", &error));
  CHECK(error ==
        "image \"web\": x.qcow2 is not listed in SUMS (it lists no sha256 or sha512 "
        "checksums)");
  CHECK_FALSE(checksum_for(std::string(64, '1') + "  y.qcow2\n", "x.qcow2", "web", "SUMS", &error));
  CHECK(error == "image \"web\": x.qcow2 is not listed in SUMS (it lists y.qcow2)");
}

TEST_CASE("URLs: file names and file:// paths extracted", "[images]") {
  CHECK(file_name_of("https://h/d/debian-12.qcow2?x=1#y") == "debian-12.qcow2");
  CHECK(file_name_of("/srv/my%20disk.raw") == "my disk.raw");
  CHECK(file_name_of("relative.raw") == "relative.raw");
  CHECK(path_of_file_url("file:///srv/a%20b.qcow2") == "/srv/a b.qcow2");
  CHECK(path_of_file_url("file://localhost/srv/x") == "/srv/x");
  CHECK_FALSE(path_of_file_url("file://otherhost/srv/x"));
}
