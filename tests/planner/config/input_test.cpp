// What kumo accepts as a cluster file at all: UTF-8 text (with or without a byte order mark), a
// regular file of bounded size. Anything else is a clear, located error, never a hang.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "planner/config/loader.h"
#include "planner/config/utf8.h"

using namespace kumo;

namespace {

const std::string kValid =
    "cluster: fest\nvms:\n  web: {image: deb}\nimages:\n  deb: {path: "
    "/srv/deb.qcow2, checksum: none}\n";

std::string errors_of(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics.sorted()) out += format_diagnostic(d) + "\n";
  return out;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("kumo-input-test-" + std::to_string(getpid()) + "-" + name))
      .string();
}

}  // namespace

TEST_CASE("UTF-8 is checked byte by byte", "[config][input]") {
  CHECK_FALSE(first_invalid_utf8("plain ascii\n"));
  CHECK_FALSE(first_invalid_utf8("雲 and ü and 😀"));
  for (const char* bad : {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\xe9\x9b", "\x80"}) {
    INFO(bad);
    CHECK(first_invalid_utf8(bad));
  }
  const auto at = first_invalid_utf8("ok\n雲 x\xfey");
  REQUIRE(at);
  CHECK(at->line == 2);
  CHECK(at->column == 4);  // 雲, space, x, then the bad byte
  CHECK(at->offset == 8);
}

TEST_CASE("a file that is not UTF-8 is a located error, a byte order mark is fine",
          "[config][input]") {
  auto bad = load_config_text("cluster: fest\nvms:\n  web: {image: \"d\xe9\x62\"}\n", "kumo.yaml",
                              "/tmp", {});
  CHECK_FALSE(bad.config);
  CHECK(errors_of(bad) ==
        "kumo.yaml:3:18: error: not UTF-8 text (byte 0xe9); save the file as UTF-8\n");
  auto bom = load_config_text("\xEF\xBB\xBF" + kValid, "kumo.yaml", "/tmp", {});
  INFO(errors_of(bom));
  CHECK(bom.config);
}

TEST_CASE("devices, FIFOs and huge files are refused at once", "[config][input]") {
  const auto start = std::chrono::steady_clock::now();
  auto zero = load_config("/dev/zero", {});
  CHECK(errors_of(zero) == "/dev/zero: error: cannot read the cluster file: not a regular file\n");

  const std::string fifo = temp_path("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  auto from_fifo = load_config(fifo, {});  // nobody writes to it: opening it would block
  CHECK(errors_of(from_fifo) ==
        fifo + ": error: cannot read the cluster file: not a regular file\n");
  LoadOptions with_var_file;
  with_var_file.var_files = {fifo};
  const std::string ok = temp_path("ok.yaml");
  std::ofstream(ok) << kValid;
  auto var_fifo = load_config(ok, with_var_file);
  CHECK_THAT(errors_of(var_fifo), Catch::Contains("not a regular file"));
  std::filesystem::remove(fifo);

  const std::string huge = temp_path("huge.yaml");
  {
    std::ofstream out(huge);
    out << kValid << "#" << std::string(kMaxInputBytes, 'x') << "\n";
  }
  auto big = load_config(huge, {});
  CHECK(errors_of(big) == huge + ": error: cannot read the cluster file: larger than 16 MiB\n");
  std::filesystem::remove(huge);
  std::filesystem::remove(ok);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}
