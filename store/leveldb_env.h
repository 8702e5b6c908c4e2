// PreadFilesEnv: the leveldb::Env the LevelDB backend runs on by default.
// Only store/ includes it.
//
// Why: LevelDB's PosixEnv memory-maps up to 1000 table files for reading
// (on 64-bit). Every page of a mapped table that a read or a compaction
// touches is counted in the daemon's resident set, so after a 1 GiB
// upload the daemon's peak RSS was 1.3 GiB: guarantee 5 of the design
// (memory does not grow with file size) broken by the kernel's
// accounting, not by a leak. This Env reads table files with pread(2)
// instead, into LevelDB's own buffers (bounded by the block cache and the
// blocks in flight); the page cache still serves the bytes, outside our
// RSS. Everything else goes to the wrapped Env.
//
// Thread safety: as leveldb::Env (all methods may be called concurrently).
#pragma once

#include <leveldb/env.h>

namespace upfs::store {

class PreadFilesEnv : public leveldb::EnvWrapper {
 public:
  explicit PreadFilesEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

  // A file read with pread(2); the descriptor stays open until the file
  // is deleted (LevelDB's table cache bounds how many are open).
  leveldb::Status NewRandomAccessFile(const std::string& fname, leveldb::RandomAccessFile** result) override;
};

}  // namespace upfs::store
