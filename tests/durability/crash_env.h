// CrashEnv: a leveldb::Env that can simulate a machine crash (power loss),
// in the spirit of LevelDB's own db/fault_injection_test.cc, for tests of
// what survives one. The only test code besides store/ that names LevelDB.
//
// The model. Every file LevelDB creates or appends to through this Env is
// tracked: how many bytes were appended, and how many of them a Sync() made
// durable. A directory entry is durable once its directory was synced;
// like PosixEnv, a Sync() of a MANIFEST file also syncs its directory, and
// like LevelDB's fault-injection test (and ext4/xfs in practice) a Sync()
// of a newly created file makes its own entry durable with its directory.
// Renames are durable at once (LevelDB renames only CURRENT, at open).
//
// Crash() is the moment the power goes: from then on nothing reaches the
// durable state. The database keeps running (it cannot be stopped from
// inside), so its files keep changing, but syncs no longer count, removals
// are deferred forever (they were never durable) and renames fail. After
// the database is closed, DropUnsyncedData() turns the directory into what
// a rebooted machine would find: every tracked file truncated to the bytes
// synced before the crash, every file whose entry was not yet durable
// deleted. Files that existed before this Env saw them count as durable.
//
// CrashAfter(n) arms a crash at the n-th file event (create, append or
// sync; the event itself is lost), so crash points fall anywhere inside
// LevelDB's work: mid memtable flush, between a table's sync and the
// MANIFEST's, and so on.
//
// Thread safety: as leveldb::Env, every method may be called from any
// thread; the state is guarded by one mutex.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <leveldb/env.h>

namespace upfs::testing {

class CrashEnv : public leveldb::EnvWrapper {
 public:
  // Wraps LevelDB's default Env.
  CrashEnv();
  ~CrashEnv() override;

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override;
  leveldb::Status RemoveFile(const std::string& fname) override;
  leveldb::Status RenameFile(const std::string& src, const std::string& target) override;

  // The power goes now. Idempotent.
  void Crash();
  // Crash at the `events`-th file event from now (1: the next one). 0
  // disarms.
  void CrashAfter(uint64_t events);
  bool crashed() const;
  // While held, LevelDB's creation of table files (*.ldb: memtable flushes
  // and compactions) waits, so a test can crash with a flush pending.
  void HoldTableFiles(bool hold);
  // File events (creates, appends, syncs) seen so far.
  uint64_t events() const;

  // After the database using this Env is closed: truncates and deletes
  // files as the crash left them (a no-op without a crash). Returns a
  // description of the first filesystem error, empty on success.
  std::string DropUnsyncedData();

  // Called by the tracked files.
  void Appended(const std::string& fname, uint64_t bytes);
  // Returns false when the crash has happened (the sync is then skipped).
  bool BeforeSync(const std::string& fname);
  void Synced(const std::string& fname);

 private:
  struct FileState {
    uint64_t size = 0;           // bytes appended (or present when first seen)
    uint64_t synced = 0;         // of which durable
    bool entry_durable = false;  // its directory entry survives a crash
  };

  // Counts one event; crashes if it is the armed one. Returns crashed_.
  bool CountEventLocked();
  void Track(const std::string& fname, uint64_t existing_bytes, bool entry_durable);
  // Every tracked file of `dir` gets a durable entry.
  void DirSyncedLocked(const std::string& dir);

  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;  // GUARDED_BY(mu_)
  bool crashed_ = false;                    // GUARDED_BY(mu_)
  uint64_t events_ = 0;                     // GUARDED_BY(mu_)
  uint64_t crash_at_event_ = 0;             // GUARDED_BY(mu_); 0: not armed
  bool hold_tables_ = false;                // GUARDED_BY(mu_)
  std::condition_variable hold_released_;
};

}  // namespace upfs::testing
