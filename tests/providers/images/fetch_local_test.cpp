// fetch_image for local files (path and file://), format detection, and where the cache lives.
#include <sys/stat.h>

#include <filesystem>

#include <catch2/catch.hpp>

#include "http_fixture.h"
#include "providers/digest.h"
#include "providers/images/fetch.h"

using namespace kumo;
using namespace kumo::images;
using kumo::testing::TempDir;

namespace {

struct LocalLab {
  TempDir files, cache;
  std::string qcow2 = testing::random_bytes(300000, true);
  std::string raw = testing::random_bytes(200000, false);

  LocalLab() {
    testing::write_file(files / "appliance.qcow2", qcow2);
    testing::write_file(files / "appliance.raw", raw);
  }
  ImageSource image(const std::string& file) const {
    ImageSource image;
    image.name = "appliance";
    image.path = files / file;
    return image;
  }
  FetchOptions options() const {
    FetchOptions options;
    options.cache_dir = cache.path();
    return options;
  }
};

ino_t inode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("a local file without a checksum is hashed and copied into the cache", "[images]") {
  LocalLab lab;
  const auto first = fetch_image(lab.image("appliance.qcow2"), lab.options());

  REQUIRE(first.error == "");
  CHECK(first.image->path == lab.cache / ("sha256/" + sha256_hex(lab.qcow2)));
  CHECK(first.image->downloaded);
  CHECK(first.image->format == "qcow2");
  CHECK(testing::read_file(first.image->path) == lab.qcow2);
  CHECK(inode(first.image->path) != inode(lab.files / "appliance.qcow2"));  // a copy, not a link
  CHECK(std::filesystem::is_empty(lab.cache / "tmp"));

  const auto second = fetch_image(lab.image("appliance.qcow2"), lab.options());
  REQUIRE(second.error == "");
  CHECK_FALSE(second.image->downloaded);
  CHECK(second.image->path == first.image->path);
}

TEST_CASE("a file:// URL is checked against its checksum", "[images]") {
  LocalLab lab;
  auto image = lab.image("appliance.raw");
  image.path.reset();
  image.url = "file://" + lab.files / "appliance.raw";
  SECTION("matching") {
    image.checksum = Checksum{ChecksumAlgo::Sha256, sha256_hex(lab.raw)};
    const auto result = fetch_image(image, lab.options());
    REQUIRE(result.error == "");
    CHECK(result.image->format == "raw");
    CHECK(testing::read_file(result.image->path) == lab.raw);
  }
  SECTION("not matching") {
    image.checksum = Checksum{ChecksumAlgo::Sha256, std::string(64, 'f')};
    const auto result = fetch_image(image, lab.options());
    CHECK(result.error == "image \"appliance\": checksum mismatch for " + *image.url +
                              ": expected sha256:" + std::string(64, 'f') +
                              ", got sha256:" + sha256_hex(lab.raw) + " (the copy was discarded)");
    CHECK(std::filesystem::is_empty(lab.cache / "tmp"));
  }
}

TEST_CASE("a missing local file is named in the error", "[images]") {
  LocalLab lab;
  const auto result = fetch_image(lab.image("nope.qcow2"), lab.options());
  CHECK(result.error == "image \"appliance\": cannot read " + lab.files / "nope.qcow2" +
                            ": No such file or directory");
}

TEST_CASE("the format is detected from the magic bytes and must match a declared one", "[images]") {
  LocalLab lab;
  auto image = lab.image("appliance.raw");
  image.format = ImageFormat::Raw;
  CHECK(fetch_image(image, lab.options()).image->format == "raw");

  image.format = ImageFormat::Qcow2;
  CHECK(fetch_image(image, lab.options()).error ==
        "image \"appliance\": format: qcow2 is declared, but " + lab.files / "appliance.raw" +
            " is a raw image");

  image = lab.image("appliance.qcow2");
  image.format = ImageFormat::Raw;
  CHECK(fetch_image(image, lab.options()).error ==
        "image \"appliance\": format: raw is declared, but " + lab.files / "appliance.qcow2" +
            " is a qcow2 image");
}

TEST_CASE("find_cached finds an entry by checksum without reading the source", "[images]") {
  LocalLab lab;
  const Checksum sum{ChecksumAlgo::Sha256, sha256_hex(lab.qcow2)};
  CHECK_FALSE(find_cached(lab.image("appliance.qcow2"), sum, lab.cache.path()));
  REQUIRE(fetch_image(lab.image("appliance.qcow2"), lab.options()).error == "");
  std::filesystem::remove(lab.files / "appliance.qcow2");

  const auto hit = find_cached(lab.image("appliance.qcow2"), sum, lab.cache.path());

  REQUIRE(hit);
  CHECK(hit->size == lab.qcow2.size());
  CHECK(hit->format == "qcow2");
  CHECK_FALSE(hit->downloaded);
}

TEST_CASE("the cache lives under XDG_CACHE_HOME, else HOME", "[images]") {
  CHECK(default_cache_dir({{"XDG_CACHE_HOME", "/x/cache"}, {"HOME", "/home/a"}}) ==
        "/x/cache/kumo/images");
  CHECK(default_cache_dir({{"XDG_CACHE_HOME", "relative"}, {"HOME", "/home/a"}}) ==
        "/home/a/.cache/kumo/images");
  CHECK(default_cache_dir({{"HOME", "/home/a"}}) == "/home/a/.cache/kumo/images");
  CHECK(default_cache_dir({}) == "");
}
