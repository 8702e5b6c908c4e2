// AssetReadCache: the last few windows (1 MiB locally, 4 MiB on RADOS)
// read from committed files, shared by every reader, loaded ahead of
// sequential readers.
//
// Why: the kernel reads a file in requests of its readahead size (128 KiB
// by default), several at once, while the store keeps a committed file as
// 1 MiB chunks, each one LevelDB block that is checksummed whenever it is
// loaded. Served one request at a time, concurrent requests for the same
// chunk each loaded and checksummed it: a 512 MiB read did 1230 block reads
// of 1 MiB, and software CRC32C was 45 % of the daemon's CPU (perf). Here a
// window is read from the store once, by the first reader that needs it
// (the others wait for it), and later requests copy from memory.
//
// Readahead: a reader that reaches window k of a file whose window k - 1
// is cached (or k = 0) reads sequentially, and the next `readahead`
// windows are loaded by background threads while it copies. One window
// at a time, a cold read waits for one store read per MiB: over RADOS two
// round trips (the blob's extent records, then the stripe's bytes), 212
// MiB/s against 792 for `rados bench seq` (tests/bench/rados_bench.sh).
// A failed load ahead is not cached; the reader that needs the window
// loads it again and gets the error itself.
//
// Only immutable bytes may be cached: committed files never change and are
// never deleted, so a window needs no invalidation. Memory: at most
// kCacheBytes of windows (kMinWindows if more), plus those still being
// copied out by a reader or loaded by a background thread for a window
// that fell out. The buffer of a window that falls out is kept for the
// next one loaded: a fresh 1 MiB
// allocation is fresh pages from the kernel, and faulting them in cost as
// much as the copies (perf of a cold read).
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"
#include "store/store.h"

namespace upfs::session {

class AssetReadCache {
 public:
  // Windows are the store's preferred read size (store::Store::
  // PreferredReadBytes: 1 MiB locally, a 4 MiB stripe on RADOS), within
  // these bounds. The cache holds kCacheBytes of them, and never fewer
  // than kMinWindows, so that a reader on RADOS has 4 stripes (16 MiB)
  // loading ahead: with 2, a cold read ran at 0.51-0.55 of `rados bench
  // seq` against 0.70-0.73 with 4 (one run each; 2 cores, 1 OSD).
  static constexpr size_t kWindowBytes = size_t{1} << 20;  // the default
  static constexpr size_t kMinWindowBytes = size_t{64} << 10;
  static constexpr size_t kMaxWindowBytes = size_t{4} << 20;
  static constexpr size_t kCacheBytes = size_t{16} << 20;
  static constexpr size_t kMinWindows = 8;
  static constexpr size_t kWindows = kCacheBytes / kWindowBytes;  // of the default size
  static constexpr size_t kReadahead = 8;

  // `readahead`: windows loaded ahead of a sequential reader, each by a
  // thread of its own (at most half the windows); 0 turns readahead off.
  explicit AssetReadCache(size_t readahead = kReadahead, size_t window_bytes = kWindowBytes);
  // Waits for the loads under way; drops those not begun.
  ~AssetReadCache();
  AssetReadCache(const AssetReadCache&) = delete;
  AssetReadCache& operator=(const AssetReadCache&) = delete;

  // Fills `out` with bytes [offset, offset + n) of the committed file
  // `id` of `length` bytes, whose bytes `sink` reads (kept by loads ahead
  // until they are done); the caller keeps the range inside the file. A
  // window that fails to load is not cached, and the range asked for is
  // then read on its own, so the read fails only if that range does. On
  // error `out` is unspecified.
  Status Read(uint64_t id, const std::shared_ptr<const store::ByteSink>& sink, uint64_t length,
              uint64_t offset, size_t n, char* out);

  // The same bytes without the copy: pieces of the cache's windows (or of
  // buffers of their own, where a window failed to load), which stay valid
  // and unchanged while the Pinned lives, even if their windows fall out
  // of the cache meanwhile. Such a window's buffer is kept for the next
  // window loaded when the Pinned goes, as for a window that falls out
  // unpinned.
  class Pinned;
  Status Pin(uint64_t id, const std::shared_ptr<const store::ByteSink>& sink, uint64_t length,
             uint64_t offset, size_t n, Pinned* out);

  // Buffers kept for windows yet to be loaded (for tests).
  size_t SpareBuffers() EXCLUDES(mu_);

 private:
  struct Window {
    Window(uint64_t id, uint64_t begin) : id(id), begin(begin) {}
    const uint64_t id;
    const uint64_t begin;
    bool read = false;  // guarded by AssetReadCache::mu_: a reader has asked for it
    // Held while loading (mu_ may be taken inside it, for a buffer: never
    // the other way round); readers wait on it.
    Mutex mu;
    bool loaded GUARDED_BY(mu) = false;
    // [begin, begin + size) of the file, in window_bytes_. Guarded by mu,
    // except where the cache holds the only reference to the window
    // (AddLocked takes the buffer back), which the analysis cannot see:
    // so not GUARDED_BY.
    std::unique_ptr<char[]> bytes;
  };
  // A window to load ahead of a reader.
  struct Load {
    std::shared_ptr<Window> window;
    std::shared_ptr<const store::ByteSink> sink;
    size_t size = 0;
  };

  using WindowList = std::list<std::shared_ptr<Window>>;

  // The window of `id` starting at `begin`, for a reader: found or added as
  // most recent. On the first read of it, the windows after it that a
  // sequential reader will want next are queued to load ahead (once per
  // window, not per request: the kernel reads a window in 8 requests).
  std::shared_ptr<Window> Find(uint64_t id, const std::shared_ptr<const store::ByteSink>& sink,
                               uint64_t length, uint64_t begin) EXCLUDES(mu_);
  // Adds a window as most recent, dropping the least recent beyond
  // windows_max_.
  std::shared_ptr<Window> AddLocked(uint64_t id, uint64_t begin) REQUIRES(mu_);
  // The cached window of `id` starting at `begin`, or end().
  WindowList::iterator LookupLocked(uint64_t id, uint64_t begin) REQUIRES(mu_);
  // Queues loads of the windows after the one at `begin` that are not
  // cached, if the reader reads sequentially; true if any was queued.
  bool ReadAheadLocked(uint64_t id, const std::shared_ptr<const store::ByteSink>& sink,
                       uint64_t length, uint64_t begin) REQUIRES(mu_);
  // Loads w's bytes unless loaded (taking a buffer under mu_).
  Status LoadLocked(Window& w, const store::ByteSink& sink, size_t size) REQUIRES(w.mu)
      EXCLUDES(mu_);
  void LoadLoop() EXCLUDES(mu_);

  // Drops a Pinned's windows, keeping the buffers of those that fell out
  // of the cache as spares.
  void Unpin(std::vector<std::shared_ptr<Window>>& windows) EXCLUDES(mu_);
  // A buffer of window_bytes_: a spare one, or a new one.
  std::unique_ptr<char[]> TakeBuffer() EXCLUDES(mu_);

  const size_t window_bytes_;
  const size_t windows_max_;
  const size_t readahead_;

  Mutex mu_;
  WindowList windows_ GUARDED_BY(mu_);                          // most recent first
  std::vector<std::unique_ptr<char[]>> spare_ GUARDED_BY(mu_);  // at most windows_max_
  std::deque<Load> loads_ GUARDED_BY(mu_);
  std::vector<std::thread> loaders_ GUARDED_BY(mu_);  // started with the first load
  bool stopping_ GUARDED_BY(mu_) = false;
  CondVar load_cv_;  // loads_ or stopping_ changed
};

class AssetReadCache::Pinned {
 public:
  Pinned() = default;
  ~Pinned();
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;

  // In file order, together the n bytes asked for.
  const std::vector<std::string_view>& pieces() const { return pieces_; }

 private:
  friend class AssetReadCache;
  AssetReadCache* cache_ = nullptr;
  std::vector<std::shared_ptr<Window>> windows_;
  std::vector<std::unique_ptr<char[]>> own_;
  std::vector<std::string_view> pieces_;
};

}  // namespace upfs::session
