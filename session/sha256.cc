// OpenSSL 3 marks the SHA256_* functions deprecated in favour of EVP. They
// remain the same assembly (SHA-NI, AVX2) behind a plain, copyable struct;
// EVP keeps its state in a heap context behind a provider object, which
// costs several hundred bytes per stream. upfs keeps one stream per file
// of every open session, so it uses the plain struct, here only.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "session/sha256.h"

#include <cstring>
#include <new>

#include <openssl/sha.h>

namespace upfs::session {
namespace {

static_assert(sizeof(SHA256_CTX) == Sha256::kStateBytes,
              "Sha256::kStateBytes must match OpenSSL's SHA256_CTX");
static_assert(alignof(SHA256_CTX) <= 8);

SHA256_CTX* Ctx(unsigned char* state) { return reinterpret_cast<SHA256_CTX*>(state); }

}  // namespace

Sha256::Sha256() { Reset(); }

void Sha256::Reset() {
  // SHA256_Init cannot fail (it only fills the struct).
  SHA256_Init(Ctx(state_));
}

void Sha256::Update(std::string_view bytes) {
  // Cannot fail for a valid context.
  SHA256_Update(Ctx(state_), bytes.data(), bytes.size());
}

std::string Sha256::HexDigest() const {
  // Finalize a copy so the stream itself can go on.
  SHA256_CTX copy;
  std::memcpy(&copy, state_, sizeof copy);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &copy);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xf]);
  }
  return hex;
}

std::string Sha256::Of(std::string_view bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.HexDigest();
}

}  // namespace upfs::session
