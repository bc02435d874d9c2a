#include "providers/digest.h"

#include <catch2/catch.hpp>

using namespace kumo;

TEST_CASE("Hasher streams SHA-256 and SHA-512, and hex() does not end the stream", "[digest]") {
  Hasher sha256(ChecksumAlgo::Sha256);
  sha256.update("a");
  sha256.update("bc");
  CHECK(sha256.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256.hex() == sha256_hex("abc"));
  sha256.update("d");
  CHECK(sha256.hex() == sha256_hex("abcd"));
  sha256.reset();
  CHECK(sha256.hex() == sha256_hex(""));

  Hasher sha512(ChecksumAlgo::Sha512);
  sha512.update("abc");
  CHECK(sha512.hex() ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST_CASE("a Checksum prints as algo:hex", "[digest]") {
  CHECK(Checksum{ChecksumAlgo::Sha256, "ab"}.str() == "sha256:ab");
  CHECK(Checksum{ChecksumAlgo::Sha512, "cd"}.str() == "sha512:cd");
}
