#include "providers/digest.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace kumo {
namespace {

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

const EVP_MD* digest_of(ChecksumAlgo algo) {
  return algo == ChecksumAlgo::Sha256 ? EVP_sha256() : EVP_sha512();
}

}  // namespace

const char* to_string(ChecksumAlgo v) {
  return v == ChecksumAlgo::Sha256 ? "sha256" : "sha512";
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256 failed");
  }
  return to_hex(digest, len);
}

void Hasher::CtxFree::operator()(evp_md_ctx_st* ctx) const noexcept {
  EVP_MD_CTX_free(ctx);
}

Hasher::Hasher(ChecksumAlgo algo) : algo_(algo), ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) throw std::runtime_error("out of memory for a digest");
  reset();
}
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

void Hasher::reset() {
  if (EVP_DigestInit_ex(ctx_.get(), digest_of(algo_), nullptr) != 1) {
    throw std::runtime_error(std::string(to_string(algo_)) + " init failed");
  }
}

void Hasher::update(const void* data, std::size_t size) {
  if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
    throw std::runtime_error(std::string(to_string(algo_)) + " update failed");
  }
}

std::string Hasher::hex() const {
  std::unique_ptr<EVP_MD_CTX, CtxFree> copy(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1 ||
      EVP_DigestFinal_ex(copy.get(), digest, &len) != 1) {
    throw std::runtime_error(std::string(to_string(algo_)) + " final failed");
  }
  return to_hex(digest, len);
}

}  // namespace kumo
