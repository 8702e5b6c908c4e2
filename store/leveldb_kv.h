// The LevelDB backend: the embedded default store. The only code in upfs
// that includes LevelDB.
//
// A store directory holds the LevelDB database in `db/` (and the daemon's
// log file, `upfs.log`). Opening:
//   * a missing or empty directory becomes a new store;
//   * a directory with other content and no `db/` is refused: it is not a
//     upfs store, and upfs never writes into a directory it did not create;
//   * a store of another format version is refused with both versions;
//   * a store already open in another process is refused (LevelDB's lock):
//     Busy, "store DIR is in use by another upfs".
//
// Thread safety: as Store.
#pragma once

#include <memory>
#include <string>

#include "store/kv.h"
#include "store/kv_store.h"
#include "store/status.h"

namespace leveldb {
class Env;
}  // namespace leveldb

namespace upfs::store {

struct LevelDbOptions {
  // Memtable size and SST file size. Measured on the target machine: 1 MiB
  // values went in at ~0.45 GB/s with LevelDB's defaults (4 MiB / 2 MiB)
  // and ~0.82 GB/s with 64 MiB, because fewer, larger flushes and
  // compactions rewrite less. Two memtables (active + immutable) bound the
  // daemon's memory for buffered writes at 2x this.
  size_t write_buffer_size = size_t{64} << 20;
  size_t max_file_size = size_t{64} << 20;
  // Block cache for reads of chunk and record blocks.
  size_t block_cache_bytes = size_t{32} << 20;
  leveldb::Env* env = nullptr;  // tests inject faults; null: LevelDB's default
};

// Opens the LevelDB Kv at `db_dir` (creating it when `create`).
Result<std::unique_ptr<Kv>> OpenLevelDbKv(const std::string& db_dir, bool create,
                                          const LevelDbOptions& options = {});

// Opens (or creates) the upfs store in `store_dir`, as described above.
Result<std::unique_ptr<Store>> OpenLevelDbStore(const std::string& store_dir,
                                                const LevelDbOptions& options = {});

}  // namespace upfs::store
