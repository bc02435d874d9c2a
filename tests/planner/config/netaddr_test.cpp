#include "planner/config/netaddr.h"

#include <catch2/catch.hpp>

using namespace kumo;

TEST_CASE("IPv4 addresses parse strictly", "[netaddr]") {
  CHECK(std::get<Ipv4>(parse_ipv4("10.1.2.3")).str() == "10.1.2.3");
  CHECK(std::get<ParseError>(parse_ipv4("10.1.2")).message == "\"10.1.2\" is not an IPv4 address");
  CHECK(std::get<ParseError>(parse_ipv4("10.1.2.256")).message ==
        "\"10.1.2.256\" is not an IPv4 address");
  CHECK(std::get<ParseError>(parse_ipv4("10.01.2.3")).message ==
        "\"10.01.2.3\" is not an IPv4 address");
  CHECK(std::get<ParseError>(parse_ipv4("fd00::1")).message ==
        "\"fd00::1\" is not an IPv4 address (IPv6 is not supported yet)");
}

TEST_CASE("CIDR blocks must be in network form", "[netaddr]") {
  auto c = std::get<Cidr>(parse_cidr("192.168.50.0/24"));
  CHECK(c.str() == "192.168.50.0/24");
  CHECK(c.netmask() == "255.255.255.0");
  CHECK(c.first_host().str() == "192.168.50.1");
  CHECK(c.last_host().str() == "192.168.50.254");
  CHECK(c.contains(std::get<Ipv4>(parse_ipv4("192.168.50.77"))));
  CHECK_FALSE(c.contains(std::get<Ipv4>(parse_ipv4("192.168.51.1"))));
  CHECK(std::get<ParseError>(parse_cidr("192.168.50.1/24")).message ==
        "invalid CIDR 192.168.50.1/24: host bits are set (did you mean 192.168.50.0/24?)");
  CHECK(std::get<ParseError>(parse_cidr("10.0.0.0/31")).message ==
        "invalid CIDR 10.0.0.0/31: prefix must be between /8 and /30");
  CHECK(std::get<ParseError>(parse_cidr("10.0.0.0")).message ==
        "\"10.0.0.0\" is not a CIDR block (write e.g. 10.10.0.0/24)");
  auto a = std::get<Cidr>(parse_cidr("10.0.0.0/16"));
  auto b = std::get<Cidr>(parse_cidr("10.0.5.0/24"));
  auto d = std::get<Cidr>(parse_cidr("10.1.0.0/24"));
  CHECK(a.overlaps(b));
  CHECK(b.overlaps(a));
  CHECK_FALSE(a.overlaps(d));
}

TEST_CASE("MAC addresses", "[netaddr]") {
  auto m = std::get<Mac>(parse_mac("52:54:00:AB:cd:ef"));
  CHECK(m.str() == "52:54:00:ab:cd:ef");
  CHECK(m.plus(1).str() == "52:54:00:ab:cd:f0");
  CHECK(std::get<ParseError>(parse_mac("01:00:5e:00:00:01")).message ==
        "MAC 01:00:5e:00:00:01 is a multicast address (the first byte must be even)");
  CHECK(std::get<ParseError>(parse_mac("52:54:00:zz:00:01")).message.find("is not a MAC address") !=
        std::string::npos);
}
