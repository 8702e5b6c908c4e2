// BoundedEnv: the leveldb::Env the LevelDB backend runs on by default. It
// keeps two costs of the store bounded that LevelDB's PosixEnv lets grow
// with the upload. Only store/ includes it.
//
// Memory. PosixEnv memory-maps up to 1000 table files for reading (on
// 64-bit). Every page of a mapped table that a read or a compaction
// touches is counted in the daemon's resident set, so after a 1 GiB upload
// the daemon's peak RSS was 1.3 GiB: G5 of docs/semantics.md (memory
// does not grow with file size) broken by the kernel's accounting, not by
// a leak. Here table files are read with pread(2) into LevelDB's own
// buffers (bounded by the block cache and the blocks in flight); the page
// cache still serves the bytes, outside our RSS.
//
// Unsynced data. Write-ahead logs and tables are written through the page
// cache and synced only when LevelDB asks (a synced write, a finished
// table). Each such fdatasync then had up to a whole 64 MiB memtable or
// table to write out: the commit at the end of an upload waited for it
// (hundreds of ms), and a memtable switch stalled every writer while the
// finished log was synced (store/leveldb_kv.cc). Here, every kWritebackBytes
// appended to a log or table, writeback of those bytes is started at once
// (sync_file_range(SYNC_FILE_RANGE_WRITE), which does not wait), so a sync
// finds little left to do. Durability is unchanged: Sync() is still
// fdatasync(2); the early writeback only moves when the disk does the work.
//
// Everything else (MANIFEST, CURRENT, the info LOG, locks, threads) goes to
// the wrapped Env.
//
// Thread safety: as leveldb::Env (all methods may be called concurrently).
#pragma once

#include <cstddef>
#include <string>

#include <leveldb/env.h>

namespace upfs::store {

class BoundedEnv : public leveldb::EnvWrapper {
 public:
  // Writeback of a log or table is started every this many bytes.
  static constexpr size_t kWritebackBytes = size_t{4} << 20;

  explicit BoundedEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

  // A file read with pread(2); the descriptor stays open until LevelDB
  // drops the file (its table cache bounds how many are open).
  leveldb::Status NewRandomAccessFile(const std::string& fname,
                                      leveldb::RandomAccessFile** result) override;
  // Logs (*.log) and tables (*.ldb) start their writeback early, as above;
  // other files are the wrapped Env's.
  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
};

}  // namespace upfs::store
