// HashFrontier: the SHA-256 of a file's bytes [0, frontier), kept in file
// order whatever order the bytes arrive in.
//
// Bytes that arrive exactly at the frontier are hashed at once; bytes that
// arrive beyond it wait in the store until the gap before them fills, and
// are then read back to catch up. A rewrite of bytes behind the frontier
// with different bytes invalidates the state: the file is rehashed from
// the store when its hash is next needed (finish), not on every write.
//
// Thread safety: none; the file's lock guards it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "session/sha256.h"

namespace upfs::session {

class HashFrontier {
 public:
  // Empty file, valid.
  void Reset() {
    sha_.Reset();
    frontier_ = 0;
    valid_ = true;
  }
  void Invalidate() { valid_ = false; }

  bool valid() const { return valid_; }
  // Bytes [0, frontier) are hashed (meaningful only when valid).
  uint64_t frontier() const { return valid_ ? frontier_ : 0; }

  // Hashes the part of [offset, offset + data.size()) beyond the frontier,
  // if the range reaches it. Returns whether the frontier moved.
  bool Feed(uint64_t offset, std::string_view data) {
    if (!valid_ || offset > frontier_ || offset + data.size() <= frontier_) return false;
    sha_.Update(data.substr(frontier_ - offset));
    frontier_ = offset + data.size();
    return true;
  }

  // A feed in two halves, for a caller that hashes with its lock let go:
  // BeginFeed gives the context to update with the bytes from the
  // frontier on (nothing else may touch this object until EndFeed), and
  // EndFeed moves the frontier to `end` (unless the hash was voided
  // meanwhile, which it then stays).
  Sha256* BeginFeed() { return &sha_; }
  void EndFeed(uint64_t end) {
    if (valid_) frontier_ = end;
  }

  std::string HexDigest() const { return sha_.HexDigest(); }

 private:
  Sha256 sha_;
  uint64_t frontier_ = 0;
  bool valid_ = true;
};

}  // namespace upfs::session
