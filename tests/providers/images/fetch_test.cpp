// fetch_image over HTTP against a loopback server (http_fixture.py) that can drop, fail, hang
// and count requests.
#include "providers/images/fetch.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "http_fixture.h"
#include "providers/digest.h"

using namespace kumo;
using namespace kumo::images;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;
using kumo::testing::HttpFixture;
using kumo::testing::TempDir;

namespace {

constexpr std::size_t kSize = 5 * 1024 * 1024;

std::chrono::duration<double> since(std::chrono::steady_clock::time_point start) {
  return std::chrono::steady_clock::now() - start;
}

// A server with one ~5 MiB qcow2-looking image, and an empty cache.
struct Lab {
  TempDir root, cache;
  std::string bytes = testing::random_bytes(kSize, true);
  Checksum checksum{ChecksumAlgo::Sha256, sha256_hex(bytes)};
  HttpFixture server{root.path()};

  Lab() { testing::write_file(root / "debian-12.qcow2", bytes); }

  ImageSource image(const std::string& path_and_query = "/debian-12.qcow2") const {
    ImageSource image;
    image.name = "debian-12";
    image.url = server.url(path_and_query);
    image.checksum = checksum;
    return image;
  }
  FetchOptions options() const {
    FetchOptions options;
    options.cache_dir = cache.path();
    return options;
  }
  bool tmp_is_empty() const { return std::filesystem::is_empty(cache / "tmp"); }
};

}  // namespace

TEST_CASE("a download lands in the cache byte for byte, verified, with its metadata", "[images]") {
  Lab lab;
  std::vector<FetchProgress> calls;
  auto options = lab.options();
  options.on_progress = [&](const FetchProgress& p) { calls.push_back(p); };

  const auto result = fetch_image(lab.image(), options);

  REQUIRE(result.error == "");
  REQUIRE(result.image);
  CHECK(result.image->path == lab.cache / ("sha256/" + lab.checksum.hex));
  CHECK(result.image->checksum == lab.checksum);
  CHECK(result.image->size == kSize);
  CHECK(result.image->format == "qcow2");
  CHECK(result.image->downloaded);
  CHECK(testing::read_file(result.image->path) == lab.bytes);
  const auto meta = nlohmann::json::parse(testing::read_file(result.image->path + ".json"));
  CHECK(meta["source"] == lab.server.url("/debian-12.qcow2"));
  CHECK(meta["size"] == kSize);
  CHECK(meta["format"] == "qcow2");
  CHECK(meta["fetched_at"].get<std::string>().size() == 20);
  CHECK(lab.tmp_is_empty());
  REQUIRE(!calls.empty());
  CHECK(calls.back().finished);
  CHECK(calls.back().image == "debian-12");
  CHECK(calls.back().done == kSize);
  CHECK(calls.back().total == kSize);
  CHECK(std::count_if(calls.begin(), calls.end(), [](auto& p) { return p.finished; }) == 1);
}

TEST_CASE("a second fetch of the same checksum makes no request, even from another URL",
          "[images]") {
  Lab lab;
  REQUIRE(fetch_image(lab.image(), lab.options()).error == "");

  const auto again = fetch_image(lab.image("/mirror/other-name.qcow2"), lab.options());

  REQUIRE(again.error == "");
  CHECK_FALSE(again.image->downloaded);
  CHECK(again.image->path == lab.cache / ("sha256/" + lab.checksum.hex));
  CHECK(lab.server.requests("/debian-12.qcow2") == 1);
  CHECK(lab.server.requests("/mirror/other-name.qcow2") == 0);
}

TEST_CASE("a download the server drops half way resumes with a Range request", "[images]") {
  Lab lab;
  const auto result = fetch_image(
      lab.image("/debian-12.qcow2?drop_after=" + std::to_string(kSize / 2)), lab.options());

  REQUIRE(result.error == "");
  CHECK(testing::read_file(result.image->path) == lab.bytes);
  const auto stats = lab.server.stats("/debian-12.qcow2");
  CHECK(stats["requests"] == 2);
  CHECK(stats["range_requests"] == 1);
  CHECK(stats["bytes"].get<std::size_t>() < 2 * kSize);
}

TEST_CASE("a part file left by an earlier run is rehashed and resumed", "[images]") {
  Lab lab;
  testing::write_file(lab.cache / ("tmp/" + lab.checksum.hex + ".part"),
                      lab.bytes.substr(0, 1024 * 1024));

  const auto result = fetch_image(lab.image(), lab.options());

  REQUIRE(result.error == "");
  CHECK(testing::read_file(result.image->path) == lab.bytes);
  const auto stats = lab.server.stats("/debian-12.qcow2");
  CHECK(stats["range_requests"] == 1);
  CHECK(stats["bytes"] == kSize - 1024 * 1024);
}

TEST_CASE("a server that answers a Range request with 200 is started over", "[images]") {
  Lab lab;
  const auto result =
      fetch_image(lab.image("/debian-12.qcow2?drop_after=1000000&norange=1"), lab.options());

  REQUIRE(result.error == "");
  CHECK(testing::read_file(result.image->path) == lab.bytes);
  CHECK(lab.server.requests("/debian-12.qcow2") == 2);
}

TEST_CASE("a wrong checksum discards the download and says what it expected and got", "[images]") {
  Lab lab;
  auto image = lab.image();
  image.checksum = Checksum{ChecksumAlgo::Sha256, std::string(64, 'a')};

  const auto result = fetch_image(image, lab.options());

  CHECK_FALSE(result.image);
  CHECK(result.error == "image \"debian-12\": checksum mismatch for " + *image.url +
                            ": expected sha256:" + std::string(64, 'a') +
                            ", got sha256:" + lab.checksum.hex + " (the download was discarded)");
  CHECK(lab.tmp_is_empty());
  CHECK_FALSE(std::filesystem::exists(lab.cache / "sha256"));
}

TEST_CASE(
    "checksum_url: the image's line is found in either form, the hex length says the algorithm",
    "[images]") {
  Lab lab;
  const std::string other(64, 'b');
  std::string upper = lab.checksum.hex;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  testing::write_file(lab.root / "binary/SHA256SUMS",
                      other + "  other.qcow2\n" + upper + " *debian-12.qcow2\n");
  testing::write_file(lab.root / "text/SHA256SUMS", lab.checksum.hex + "  debian-12.qcow2\n");
  Hasher sha512(ChecksumAlgo::Sha512);
  sha512.update(lab.bytes);
  testing::write_file(lab.root / "SHA512SUMS", sha512.hex() + "  debian-12.qcow2\n");
  auto image = lab.image();
  image.checksum.reset();
  std::string error;

  for (const std::string list : {"/binary/SHA256SUMS", "/text/SHA256SUMS"}) {
    image.checksum_url = lab.server.url(list);
    CHECK(resolve_checksum(image, lab.options(), &error) == lab.checksum);
    CHECK(error == "");
  }
  image.checksum_url = "file://" + lab.root / "SHA512SUMS";
  CHECK(resolve_checksum(image, lab.options(), &error) ==
        Checksum{ChecksumAlgo::Sha512, sha512.hex()});

  image.checksum_url = lab.server.url("/binary/SHA256SUMS");
  REQUIRE(fetch_image(image, lab.options()).error == "");
  REQUIRE(fetch_image(image, lab.options()).error == "");
  CHECK(lab.server.requests("/debian-12.qcow2") == 1);  // the list is read again, the image not
}

TEST_CASE("checksum_url without the image's name lists the names it has", "[images]") {
  Lab lab;
  std::string list;
  for (const char* name : {"a", "b", "c", "d", "e", "f", "g"}) {
    list += std::string(64, 'c') + "  " + name + ".qcow2\n";
  }
  testing::write_file(lab.root / "SHA256SUMS", list);
  auto image = lab.image();
  image.checksum.reset();
  image.checksum_url = lab.server.url("/SHA256SUMS");

  const auto result = fetch_image(image, lab.options());

  CHECK(result.error == "image \"debian-12\": debian-12.qcow2 is not listed in " +
                            *image.checksum_url +
                            " (it lists a.qcow2, b.qcow2, c.qcow2, d.qcow2, e.qcow2 and 2 more)");
  CHECK(lab.server.requests("/debian-12.qcow2") == 0);
}

TEST_CASE("a 404 names the image, the URL and the status, and is not retried", "[images]") {
  Lab lab;
  const auto result = fetch_image(lab.image("/missing.qcow2"), lab.options());

  CHECK(result.error == "image \"debian-12\": cannot download " + lab.server.url("/missing.qcow2") +
                            ": 404 Not Found");
  CHECK(lab.server.requests("/missing.qcow2") == 1);
}

TEST_CASE("HTTP 500 is retried with backoff until the server recovers or retries run out",
          "[images]") {
  Lab lab;
  SECTION("recovers") {
    const auto result = fetch_image(lab.image("/debian-12.qcow2?fail_times=2"), lab.options());
    REQUIRE(result.error == "");
    CHECK(lab.server.requests("/debian-12.qcow2") == 3);
  }
  SECTION("gives up") {
    auto options = lab.options();
    options.retries = 1;
    const auto image = lab.image("/debian-12.qcow2?status=503");
    const auto result = fetch_image(image, options);
    CHECK(result.error == "image \"debian-12\": cannot download " +
                              lab.server.url("/debian-12.qcow2?status=(redacted)") +
                              ": 503 Service Unavailable (gave up after 2 attempts)");
    CHECK(lab.server.requests("/debian-12.qcow2") == 2);
  }
  SECTION("429 is worth a retry too") {
    auto options = lab.options();
    options.retries = 1;
    const auto result = fetch_image(lab.image("/debian-12.qcow2?status=429"), options);
    CHECK_THAT(result.error, EndsWith(": 429 Too Many Requests (gave up after 2 attempts)"));
  }
}

TEST_CASE("a server that never answers, or a host that never accepts, times out quickly",
          "[images]") {
  Lab lab;
  auto options = lab.options();
  options.retries = 1;
  options.low_speed_time = std::chrono::seconds(1);
  options.connect_timeout = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  SECTION("no answer") {
    const auto image = lab.image("/debian-12.qcow2?hang=1");
    const auto result = fetch_image(image, options);
    CHECK_THAT(result.error, StartsWith("image \"debian-12\": cannot download " +
                                        lab.server.url("/debian-12.qcow2?hang=(redacted)") + ": "));
    CHECK_THAT(result.error, EndsWith("(gave up after 2 attempts)"));
  }
  SECTION("no connection") {
    testing::BlackholeListener blackhole;
    auto image = lab.image();
    image.url = "http://127.0.0.1:" + std::to_string(blackhole.port()) + "/debian-12.qcow2";
    const auto result = fetch_image(image, options);
    CHECK_THAT(result.error,
               StartsWith("image \"debian-12\": cannot download " + *image.url + ": "));
    CHECK_THAT(result.error, Catch::Matchers::Contains("Timeout"));
  }
  CHECK(since(start).count() < 5);
}

TEST_CASE("two threads fetching one image download it once and share the path", "[images]") {
  Lab lab;
  const auto image = lab.image("/debian-12.qcow2?rate=10000000");  // ~0.5 s: they overlap
  FetchResult a, b;
  std::thread other([&] { a = fetch_image(image, lab.options()); });
  b = fetch_image(image, lab.options());
  other.join();

  REQUIRE(a.error == "");
  REQUIRE(b.error == "");
  CHECK(a.image->path == b.image->path);
  CHECK(a.image->downloaded != b.image->downloaded);
  CHECK(lab.server.requests("/debian-12.qcow2") == 1);
}

TEST_CASE("a slow download does not hold up a different image", "[images]") {
  Lab lab;
  const std::string small = testing::random_bytes(1000, false, 7);
  testing::write_file(lab.root / "small.raw", small);
  auto other = lab.image("/small.raw");
  other.name = "small";
  other.checksum = Checksum{ChecksumAlgo::Sha256, sha256_hex(small)};
  std::atomic<bool> slow_done{false};
  FetchResult slow_result;  // Catch2 assertions are for the main thread only
  std::thread slow([&] {
    slow_result = fetch_image(lab.image("/debian-12.qcow2?rate=3000000"), lab.options());
    slow_done = true;
  });
  while (lab.server.stats("/debian-12.qcow2")["bytes"] == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  const auto fast = fetch_image(other, lab.options());

  CHECK_FALSE(slow_done);  // the slow one takes ~1.7 s; the small one did not wait for it
  slow.join();
  CHECK(fast.error == "");
  CHECK(slow_result.error == "");
}

TEST_CASE("two processes fetching one image download it once and share the path", "[images]") {
  Lab lab;
  const auto image = lab.image("/debian-12.qcow2?rate=10000000");
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // no Catch2 here: report through the pipe and leave
    const auto r = fetch_image(image, lab.options());
    const std::string report = r.image ? r.image->path : "error: " + r.error;
    [[maybe_unused]] auto n = ::write(out[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(out[1]);
  const auto mine = fetch_image(image, lab.options());
  int status = 0;
  ::waitpid(child, &status, 0);
  std::string theirs;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof(buffer))) > 0;) theirs.append(buffer, n);
  ::close(out[0]);

  REQUIRE(mine.error == "");
  CHECK(theirs == mine.image->path);
  CHECK(lab.server.requests("/debian-12.qcow2") == 1);
}

TEST_CASE("user:password in a URL never reaches a message or the cache metadata", "[images]") {
  Lab lab;
  auto image = lab.image("/missing.qcow2");
  const std::string port = std::to_string(lab.server.port());
  image.url = "http://alice:s3cret@127.0.0.1:" + port + "/missing.qcow2";

  CHECK(fetch_image(image, lab.options()).error ==
        "image \"debian-12\": cannot download http://(redacted)@127.0.0.1:" + port +
            "/missing.qcow2: 404 Not Found");

  image.url = "http://alice:s3cret@127.0.0.1:" + port + "/debian-12.qcow2";
  const auto result = fetch_image(image, lab.options());
  REQUIRE(result.error == "");
  CHECK(testing::read_file(result.image->path + ".json").find("s3cret") == std::string::npos);
}

TEST_CASE("checksum: none downloads every time and caches under the sha256", "[images]") {
  Lab lab;
  auto image = lab.image();
  image.checksum.reset();
  image.checksum_none = true;

  const auto result = fetch_image(image, lab.options());

  REQUIRE(result.error == "");
  CHECK(result.image->checksum == lab.checksum);
  CHECK(lab.tmp_is_empty());
}
