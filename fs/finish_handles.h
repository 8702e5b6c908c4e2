// FinishHandles: decides which flush of an open `.finish` runs the commit.
//
// FUSE sends a flush on every close(2) of every descriptor of an open
// file, not only the last. Shells and coreutils open a file, dup2() it
// onto the descriptor they want and close the original; a pipeline
// (`(a | b) > .finish`) dup2()s a pipe over the inherited copy. Each sends
// a flush before the manifest is written. Committing there would commit
// an empty manifest, checking nothing, and make the real manifest fail.
//
// So:
//   * Once something has been written through the handle (or a write
//     through it was refused), the next flush
//     commits, from whichever process: `cmd > .finish`, `(cd src &&
//     sha256sum *) > .finish` (the command is a child of the subshell that
//     opened the file), dd, cp, tee. That close(2) returns the commit's
//     errno (sha256sum: "write error: Bad message").
//   * With nothing written (an empty manifest: `touch .finish`, `: >
//     .finish`), a flush commits only when it is the last close by the
//     process that opened the handle, which /proc tells (ProcessView). If
//     /proc cannot tell, the commit runs at release instead, just after
//     close(2) returned 0.
//   * Several processes appending lines (`find -exec sha256sum {} \;`, a
//     loop of commands): the first one to exit after writing commits what
//     is there so far (and the commit fails: the other files are not
//     listed). FUSE cannot tell that close from the last one; write the
//     manifest from one process, or build it elsewhere and copy it in.
//
// Handles are Engine handles, unique across files; only `.finish` handles
// are registered, and every other handle is left alone.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "base/mutex.h"
#include "fs/proc_fs.h"

namespace upfs::fs {

class FinishHandles {
 public:
  // `processes` (may be null: then an empty manifest commits at release)
  // must outlive this object.
  explicit FinishHandles(const ProcessView* processes) : processes_(processes) {}

  // Registers the `.finish` handle `handle` of inode `ino`, opened by
  // thread `tid`.
  void Opened(uint64_t handle, uint64_t ino, pid_t tid);
  // Notes a successful write through `handle`. Cheap when no `.finish` is
  // open (every write of every file calls it).
  void Wrote(uint64_t handle);
  enum class Flush {
    kWait,    // not the close that commits; reply 0
    kCommit,  // run the commit (or, for other handles, the engine's flush)
    kRepeat,  // the commit already ran at an earlier flush; the engine
              // answers with its result again
  };
  // What this flush of `handle`, by thread `tid`, should do (kCommit for
  // handles that are not registered).
  Flush OnFlush(uint64_t handle, pid_t tid);
  // Forgets `handle`; returns true if its commit already ran at a flush
  // (so the release's result repeats it). Never throws.
  bool Released(uint64_t handle) noexcept;

 private:
  struct State {
    uint64_t ino = 0;
    std::optional<pid_t> opener;  // process; unknown if /proc could not tell
    bool wrote = false;
    bool committed = false;  // OnFlush said kCommit
  };

  // Nothing written: only the opener's last close commits (an empty
  // manifest).
  bool IsOpenersLastClose(const State& state, pid_t tid) const;

  const ProcessView* const processes_;
  Mutex mu_;
  std::unordered_map<uint64_t, State> handles_ GUARDED_BY(mu_);
  // handles_.size(), readable without the lock: the write path's shortcut.
  std::atomic<size_t> open_count_{0};
};

}  // namespace upfs::fs
