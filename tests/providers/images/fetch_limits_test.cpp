// Downloads that cannot be downgraded or unbounded, and URLs that never leak: https never
// redirected to http, max_size, the environment's CA file and stall time, redaction, and the
// cache's permissions. Against the loopback server of http_fixture.py (http and https).
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include <catch2/catch.hpp>

#include "http_fixture.h"
#include "providers/digest.h"
#include "providers/images/fetch.h"

using namespace kumo;
using namespace kumo::images;
using Catch::Matchers::Contains;
using kumo::testing::HttpFixture;
using kumo::testing::TempDir;

namespace {

constexpr std::size_t kSize = 3 * 1024 * 1024;

// An http server and an https one (its throwaway certificate in `tls`), both serving one ~3 MiB
// image, and an empty cache.
struct Servers {
  TempDir root, cache, tls;
  std::string bytes = testing::random_bytes(kSize, true);
  Checksum checksum{ChecksumAlgo::Sha256, sha256_hex(bytes)};
  HttpFixture http{root.path()};
  HttpFixture https{root.path(), tls.path()};

  Servers() { testing::write_file(root / "debian-12.qcow2", bytes); }

  std::string ca() const { return tls / "cert.pem"; }
  ImageSource image(const std::string& url) const {
    ImageSource image;
    image.name = "debian-12";
    image.url = url;
    image.checksum = checksum;
    return image;
  }
  FetchOptions options() const {
    FetchOptions options;
    options.cache_dir = cache.path();
    options.retries = 1;
    return options;
  }
  bool tmp_is_empty() const { return std::filesystem::is_empty(cache / "tmp"); }
};

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("https is trusted through ca_bundle, CURL_CA_BUNDLE or SSL_CERT_FILE", "[images]") {
  Servers s;
  const auto image = s.image(s.https.url("/debian-12.qcow2"));
  std::string error;

  SECTION("an unknown CA is refused") {
    CHECK_THAT(fetch_image(image, s.options()).error,
               Contains("(for a private CA, set ca_bundle)"));
  }
  SECTION("ca_bundle") {
    auto own = image;
    own.ca_bundle = s.ca();
    CHECK(fetch_image(own, s.options()).error == "");
  }
  for (const char* key : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    SECTION(key) {
      const auto options = fetch_options(s.cache.path(), {{key, s.ca()}}, &error);
      REQUIRE(options);
      CHECK(fetch_image(image, *options).error == "");
    }
  }
  SECTION("an image's own ca_bundle wins over the environment's") {
    const auto options = fetch_options(s.cache.path(), {{"SSL_CERT_FILE", s.ca()}}, &error);
    auto own = image;
    own.ca_bundle = "/nonexistent/ca.pem";
    CHECK(fetch_image(own, *options).error != "");
  }
}

TEST_CASE("an https download redirected to http is refused, naming where it led", "[images]") {
  Servers s;
  const std::string target = s.http.url("/debian-12.qcow2?token=t0psecret");
  auto image = s.image(s.https.url("/moved.qcow2?redirect=" + target));
  image.ca_bundle = s.ca();

  const auto result = fetch_image(image, s.options());

  CHECK(result.error == "image \"debian-12\": cannot download " +
                            s.https.url("/moved.qcow2?redirect=(redacted)") +
                            ": refused the server's redirect to " +
                            s.http.url("/debian-12.qcow2?token=(redacted)") +
                            ": an https download is only ever redirected to https");
  CHECK(s.http.requests("/debian-12.qcow2") == 0);
  CHECK(s.https.requests("/moved.qcow2") == 1);  // not worth a retry

  SECTION("https to https, and http to https, are followed") {
    image.url = s.https.url("/moved.qcow2?redirect=" + s.https.url("/debian-12.qcow2"));
    CHECK(fetch_image(image, s.options()).error == "");
    std::filesystem::remove_all(s.cache / "sha256");
    image.url = s.http.url("/moved.qcow2?redirect=" + s.https.url("/debian-12.qcow2"));
    CHECK(fetch_image(image, s.options()).error == "");
  }
}

TEST_CASE("a checksum list behind an https URL is not fetched from http either", "[images]") {
  Servers s;
  testing::write_file(s.root / "SHA256SUMS", s.checksum.hex + "  debian-12.qcow2\n");
  auto image = s.image(s.https.url("/debian-12.qcow2"));
  image.ca_bundle = s.ca();
  image.checksum.reset();
  image.checksum_url = s.https.url("/x?redirect=" + s.http.url("/SHA256SUMS"));

  CHECK_THAT(fetch_image(image, s.options()).error,
             Contains(": refused the server's redirect to " + s.http.url("/SHA256SUMS")));
  CHECK(s.http.requests("/SHA256SUMS") == 0);
}

TEST_CASE("a download beyond max_size stops at once and leaves no part file", "[images]") {
  Servers s;
  auto options = s.options();
  SECTION("announced by Content-Length: nothing of it is read") {
    auto image = s.image(s.http.url("/debian-12.qcow2"));
    image.max_size = 1 << 20;
    const auto result = fetch_image(image, options);
    CHECK(result.error == "image \"debian-12\": cannot download " + *image.url +
                              ": the server announces 3 MiB, more than max_size (1 MiB): the "
                              "download was stopped and its part file removed");
    CHECK(s.http.requests("/debian-12.qcow2") == 1);
  }
  SECTION("a stream without a length, growing beyond it") {
    auto image = s.image(s.http.url("/debian-12.qcow2?chunked=1"));
    image.max_size = 1536 * 1024;
    const auto result = fetch_image(image, options);
    CHECK(result.error == "image \"debian-12\": cannot download " +
                              s.http.url("/debian-12.qcow2?chunked=(redacted)") +
                              ": the server sent more than max_size (1.5 MiB): the download was "
                              "stopped and its part file removed");
    CHECK(s.http.requests("/debian-12.qcow2") == 1);
  }
  SECTION("a resumed part counts too") {
    testing::write_file(s.cache / ("tmp/" + s.checksum.hex + ".part"), s.bytes.substr(0, 1000));
    auto image = s.image(s.http.url("/debian-12.qcow2"));
    image.max_size = kSize - 1;
    CHECK_THAT(fetch_image(image, options).error,
               Contains(": the server announces 3 MiB, more than max_size (2.9 MiB)"));
  }
  CHECK(s.tmp_is_empty());
  CHECK_FALSE(std::filesystem::exists(s.cache / "sha256"));
}

TEST_CASE("a download of exactly max_size is fine", "[images]") {
  Servers s;
  for (const char* query : {"", "?chunked=1"}) {
    auto image = s.image(s.http.url(std::string("/debian-12.qcow2") + query));
    image.max_size = kSize;
    CHECK(fetch_image(image, s.options()).error == "");
    std::filesystem::remove_all(s.cache / "sha256");
  }
}

TEST_CASE("a plan learns from a HEAD request that an image is beyond max_size", "[images]") {
  Servers s;
  auto image = s.image(s.http.url("/debian-12.qcow2"));
  image.max_size = 2 << 20;
  CHECK(describe_image(image, s.options()).error ==
        "image \"debian-12\": " + *image.url +
            " is 3 MiB, more than max_size (2 MiB); raise max_size if that is right");
}

TEST_CASE("a download that stalls is abandoned after KUMO_DOWNLOAD_STALL_SECONDS", "[images]") {
  Servers s;
  std::string error;
  auto options = fetch_options(s.cache.path(), {{"KUMO_DOWNLOAD_STALL_SECONDS", "1"}}, &error);
  REQUIRE(options);
  options->retries = 0;
  // A few bytes, then nothing: curl judges the speed over the last seconds, so a burst would
  // hold off the verdict.
  const auto image = s.image(s.http.url("/debian-12.qcow2?stall_after=100"));
  const auto start = std::chrono::steady_clock::now();

  const auto result = fetch_image(image, *options);

  CHECK(result.error == "image \"debian-12\": cannot download " +
                            s.http.url("/debian-12.qcow2?stall_after=(redacted)") +
                            ": stalled: less than 1 KiB/s for 1 s");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));

  SECTION("the default is 30 s; a value that is not seconds is refused") {
    CHECK(fetch_options("", {}, &error)->low_speed_time == std::chrono::seconds(30));
    for (const char* bad : {"", "0", "-1", "1m", "99999999"}) {
      CHECK_FALSE(fetch_options("", {{"KUMO_DOWNLOAD_STALL_SECONDS", bad}}, &error));
      CHECK(error == std::string("KUMO_DOWNLOAD_STALL_SECONDS: \"") + bad +
                         "\" is not a number of seconds (1 to 999999); unset it for the default "
                         "30 s");
    }
  }
}

TEST_CASE("user:password and ?token= never reach a message or the cache, the cache is private",
          "[images]") {
  Servers s;
  const std::string port = std::to_string(s.http.port());
  auto image = s.image("http://alice:s3cret@127.0.0.1:" + port + "/missing.qcow2?token=t0psecret");

  CHECK(fetch_image(image, s.options()).error ==
        "image \"debian-12\": cannot download http://(redacted)@127.0.0.1:" + port +
            "/missing.qcow2?token=(redacted): 404 Not Found");

  image.url = "http://alice:s3cret@127.0.0.1:" + port + "/debian-12.qcow2?token=t0psecret";
  const auto result = fetch_image(image, s.options());
  REQUIRE(result.error == "");
  const std::string meta = testing::read_file(result.image->path + ".json");
  CHECK(meta.find("s3cret") == std::string::npos);
  CHECK(meta.find("t0psecret") == std::string::npos);
  CHECK(meta.find("alice") == std::string::npos);
  CHECK_THAT(meta, Contains("\"http://(redacted)@127.0.0.1:" + port +
                            "/debian-12.qcow2?token=(redacted)\""));

  CHECK(mode_of(s.cache.path()) == 0700);
  CHECK(mode_of(s.cache / "tmp") == 0700);
  CHECK(mode_of(s.cache / "sha256") == 0700);
  CHECK(mode_of(result.image->path + ".json") == 0600);
  CHECK(mode_of(result.image->path) == 0400);
}

TEST_CASE("a part file is owner-only, and an open cache directory is narrowed", "[images]") {
  Servers s;
  REQUIRE(::chmod(s.cache.path().c_str(), 0755) == 0);
  auto image = s.image(s.http.url("/debian-12.qcow2?stall_after=100"));
  auto options = s.options();
  options.retries = 0;
  options.low_speed_time = std::chrono::seconds(1);

  CHECK(fetch_image(image, options).error != "");  // verified, so the part stays to resume

  CHECK(mode_of(s.cache.path()) == 0700);
  CHECK(mode_of(s.cache / ("tmp/" + s.checksum.hex + ".part")) == 0600);
}
