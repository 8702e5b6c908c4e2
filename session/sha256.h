// Sha256: incremental SHA-256, the one place upfs touches OpenSSL.
//
// The running state lives inside the object (112 bytes, no heap), so a
// session can keep one per file for as many files as it holds: an
// EVP_MD_CTX costs about three times that in separate allocations.
// Copyable: a copy continues the stream independently.
//
// Thread safety: none; one object per hashing stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace upfs::session {

class Sha256 {
 public:
  Sha256();

  void Reset();
  void Update(std::string_view bytes);
  // Lowercase hex of the digest of everything updated so far. Leaves the
  // stream open for more updates.
  std::string HexDigest() const;

  // The SHA-256 of `bytes`, hex.
  static std::string Of(std::string_view bytes);

  // Bytes of state (OpenSSL's SHA256_CTX; checked in sha256.cc).
  static constexpr size_t kStateBytes = 112;

 private:
  alignas(8) unsigned char state_[kStateBytes];
};

}  // namespace upfs::session
