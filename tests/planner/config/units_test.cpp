#include "planner/config/units.h"

#include <catch2/catch.hpp>

using namespace kumo;

namespace {
std::uint64_t size_ok(const std::string& s) {
  auto r = parse_size(s);
  INFO(s);
  REQUIRE(std::holds_alternative<std::uint64_t>(r));
  return std::get<std::uint64_t>(r);
}
std::string size_err(const std::string& s) {
  auto r = parse_size(s);
  INFO(s);
  REQUIRE(std::holds_alternative<ParseError>(r));
  return std::get<ParseError>(r).message;
}
}  // namespace

TEST_CASE("sizes use binary units and G means GiB", "[units]") {
  CHECK(size_ok("512MiB") == 512ull << 20);
  CHECK(size_ok("512M") == 512ull << 20);
  CHECK(size_ok("2GiB") == 2ull << 30);
  CHECK(size_ok("20G") == 20ull << 30);
  CHECK(size_ok("1TiB") == 1ull << 40);
  CHECK(size_ok("1.5GiB") == (3ull << 30) / 2);
  CHECK(size_ok(" 4 GiB ") == 4ull << 30);
  CHECK(size_ok("64K") == 64ull << 10);
}

TEST_CASE("sizes without a unit or with decimal units are rejected with a hint", "[units]") {
  CHECK(size_err("512") == "size 512 has no unit (write 512MiB or 512GiB)");
  CHECK(size_err("2GB") ==
        "unknown unit \"GB\" in size \"2GB\" (did you mean GiB? kumo sizes are binary)");
  CHECK(size_err("2 parsecs") ==
        "unknown unit \"parsecs\" in size \"2 parsecs\" (use K, M, G or T (binary: KiB, MiB, GiB, "
        "TiB))");
  CHECK(size_err("lots") == "\"lots\" is not a size (write e.g. 512MiB, 2GiB or 20G)");
  CHECK(size_err("0GiB") == "size 0GiB must be greater than zero");
  CHECK(size_err("99999999999999999999G").find("too large") != std::string::npos);
}

TEST_CASE("format_size prints exact binary sizes", "[units]") {
  CHECK(format_size(512ull << 20) == "512 MiB");
  CHECK(format_size(2ull << 30) == "2 GiB");
  CHECK(format_size((3ull << 30) / 2) == "1.5 GiB");
  CHECK(format_size(100) == "100 B");
}

TEST_CASE("durations", "[units]") {
  CHECK(std::get<std::chrono::seconds>(parse_duration("90s")).count() == 90);
  CHECK(std::get<std::chrono::seconds>(parse_duration("10m")).count() == 600);
  CHECK(std::get<std::chrono::seconds>(parse_duration("1h30m")).count() == 5400);
  CHECK(std::get<ParseError>(parse_duration("90")).message ==
        "duration \"90\" has no unit (write 90s or 90m)");
  CHECK(std::get<ParseError>(parse_duration("5d")).message ==
        "unknown unit \"d\" in duration \"5d\" (use s, m or h)");
  CHECK(format_duration(std::chrono::seconds(5400)) == "1h30m");
  CHECK(format_duration(std::chrono::seconds(0)) == "0s");
}
