// Sha256: incremental SHA-256, the one place upfs touches OpenSSL.
//
// Thread safety: none; one object per hashing stream.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace upfs::session {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Reset();
  void Update(std::string_view bytes);
  // Lowercase hex of the digest of everything updated so far. Leaves the
  // stream open for more updates.
  std::string HexDigest() const;

  // The SHA-256 of `bytes`, hex.
  static std::string Of(std::string_view bytes);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace upfs::session
