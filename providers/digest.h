// SHA-256/SHA-512 digests as lowercase hex, and the checksums images are verified against.
// The one place kumo uses OpenSSL: `sha256_hex` for text the planner hashes, `Hasher` for files
// and downloads fed a piece at a time. Below both planner/ and the providers that use it.
#pragma once

#include <compare>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace kumo {

enum class ChecksumAlgo { Sha256, Sha512 };

const char* to_string(ChecksumAlgo v);  // "sha256", "sha512"

struct Checksum {
  ChecksumAlgo algo = ChecksumAlgo::Sha256;
  std::string hex;  // lowercase
  std::string str() const { return std::string(to_string(algo)) + ":" + hex; }
  auto operator<=>(const Checksum&) const = default;
};

std::string sha256_hex(std::string_view data);

// Incremental digest of bytes fed a piece at a time. hex() is the digest of everything so far
// and does not end the stream: a resumed download checks its bytes, then goes on. reset()
// starts over, e.g. when a server ignores a Range request. Movable, not copyable.
class Hasher {
 public:
  explicit Hasher(ChecksumAlgo algo);
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  ~Hasher();

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  std::string hex() const;
  void reset();
  ChecksumAlgo algo() const { return algo_; }

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* ctx) const noexcept;
  };
  ChecksumAlgo algo_;
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
};

}  // namespace kumo
