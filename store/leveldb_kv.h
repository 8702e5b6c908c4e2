// The LevelDB backend: the embedded default store. The only code in upfs
// that includes LevelDB.
//
// A store directory holds the LevelDB database of records in `db/`, the
// blob bytes in `blobs/` (store/blob_files.h: DirBlobFiles), and the
// daemon's log file, `upfs.log`. Opening:
//   * a missing or empty directory becomes a new store;
//   * a directory with other content and no `db/` is refused: it is not a
//     upfs store, and upfs never writes into a directory it did not create;
//   * a store of another format version is refused with both versions;
//   * a store already open in another process is refused (LevelDB's lock):
//     Busy, "store DIR is in use by another upfs";
//   * OpenLevelDbStore is for the serving process: it calls
//     KvStore::BeginUse (after an unclean stop, the open sessions' bytes are
//     checked and lost ones dropped).
//
// Thread safety: as Store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "store/kv.h"
#include "store/kv_store.h"

namespace leveldb {
class Env;
}  // namespace leveldb

namespace upfs::store {

inline constexpr uint64_t kDefaultReserveBytes = uint64_t{512} << 20;

struct LevelDbOptions {
  // Memtable size and table file size. Two memtables (active + immutable)
  // bound the daemon's memory for buffered writes at 2x the first. When
  // chunk bytes lived in LevelDB (format 2), 64 MiB took 1 MiB values at
  // ~0.82 GB/s against ~0.45 GB/s with LevelDB's 4 MiB. Now only records
  // and small files' inline bytes come here: 40 sessions of 1500 files of
  // 24 KiB took 19.5 s with 64 MiB (96 MiB VmHWM, 5.5x the bytes written
  // to disk) and 21.2 s with 16 MiB (51 MiB VmHWM, 7.0x).
  //
  // Table files stay at LevelDB's own 2 MiB. A compaction rewrites every
  // table of the next level that overlaps its input's key range, and a
  // new table's range spans the tags between its keys (the asset index,
  // the committed entries) over all the store's history: with 64 MiB files
  // the whole index sat in one or two tables, and each compaction rewrote
  // it (a 44 MB table rewritten 50 times a minute in the soak, the daemon's
  // CPU per round 33 -> 58 ms in 7 minutes). Small tables let LevelDB cut
  // its outputs where they would overlap too much of the level below
  // (10 tables' worth), which bounds what one compaction rewrites
  // whatever the store's age.
  size_t write_buffer_size = size_t{16} << 20;
  size_t max_file_size = size_t{2} << 20;
  // Block cache for reads of record and inline-chunk blocks, and the
  // table files kept open (each keeps its index, one entry per block, in
  // memory outside the cache). Both bound the daemon's memory whatever the
  // store's age; reads that miss them are a pread of the page cache. In
  // an 8-minute soak (tests/bench/soak.sh, SMALL_KIB=8 BIG_MIB=1), two
  // daemons side by side: 32 MiB and up to 1000 tables held 69.5-78.4 MiB
  // of RSS, 8 MiB and 100 tables 44.9-52.2 MiB, at the same throughput
  // (15.1 and 15.0 MB/s in the first minute, 15.0 and 14.9 in the last).
  size_t block_cache_bytes = size_t{8} << 20;
  int max_open_tables = 100;
  // Table block size. Every open table keeps its whole index (one entry
  // per block) in memory, outside the block cache, and up to
  // max_open_tables tables stay open: with small files' bytes inline
  // a store's tables hold gigabytes, and with LevelDB's 4 KiB blocks their
  // indexes grew the daemon's RSS by ~7 MiB a minute in the soak
  // (tests/bench/soak.sh). Larger blocks shrink the index in proportion.
  size_t block_size = size_t{64} << 10;
  leveldb::Env* env = nullptr;  // tests inject faults; null: LevelDB's default

  // Free space kept for LevelDB on the store's file system (-o reserve).
  // Upload data (Kv::CheckRoomForData) is refused with NoSpace while the
  // free space (statvfs f_bavail) is below this; record writes (commits,
  // aborts, renames, ...) are not, so a full store still finishes and
  // aborts sessions, and an abort frees space. The default, 512 MiB, was
  // set for 64 MiB write buffers and tables: LevelDB must be able to write
  // both memtables (active and immutable) out as tables while their logs
  // still exist (2 x the write buffer), and a level-0 compaction writes its
  // output, up to the four level-0 tables it merges plus the level-1 tables
  // they overlap (~5 x 64 MiB tables), before it deletes its inputs.
  // Measured on a 768 MiB tmpfs: with 256 MiB, the compactions after a
  // refusal still filled the disk (tests/integration/enospc.sh). Kept with
  // the 16 MiB write buffer: the tables are still up to 64 MiB.
  //
  // Should a flush or compaction still fail with ENOSPC (a reserve set too
  // small, or another program filling the file system), LevelDB's error is
  // sticky: writes fail with NoSpace, records included, and the database
  // is reopened, with no restart, once there is room for its recovery (the
  // size of its logs plus 4 MiB). The space a failed compaction left
  // behind is only freed by that reopen, so if nothing else frees space,
  // the administrator must (LevelDB cannot say which of its files are
  // dead without reading its MANIFEST).
  uint64_t reserve_bytes = kDefaultReserveBytes;
  // Free bytes on the store's file system; null: statvfs. Tests fake it.
  std::function<Result<uint64_t>()> free_bytes;
  // Opens the blob files in the given directory; null: DirBlobFiles. Tests
  // of machine crashes put their own there.
  std::function<Result<std::unique_ptr<BlobFiles>>(const std::string& dir)> open_blobs;
};

// Opens the LevelDB Kv at `db_dir` (creating it when `create`).
Result<std::unique_ptr<Kv>> OpenLevelDbKv(const std::string& db_dir, bool create,
                                          const LevelDbOptions& options = {});

// Opens (or creates) the upfs store in `store_dir`, as described above.
Result<std::unique_ptr<Store>> OpenLevelDbStore(const std::string& store_dir,
                                                const LevelDbOptions& options = {});

}  // namespace upfs::store
