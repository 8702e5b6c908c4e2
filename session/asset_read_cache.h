// AssetReadCache: the last few 1 MiB windows read from committed files,
// shared by every reader.
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
// Only immutable bytes may be cached: committed files never change and are
// never deleted, so a window needs no invalidation. Memory: at most
// kWindows windows, plus those still being copied out by a reader. The
// buffer of a window that falls out is kept for the next one loaded: a
// fresh 1 MiB allocation is fresh pages from the kernel, and faulting
// them in cost as much as the copies (perf of a cold read).
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace upfs::session {

class AssetReadCache {
 public:
  static constexpr size_t kWindowBytes = size_t{1} << 20;
  static constexpr size_t kWindows = 8;

  // Fills `out` with bytes [offset, offset + n) of the committed file
  // `id` of `length` bytes, whose bytes `sink` reads; the caller keeps the
  // range inside the file. A window that fails to load is not cached, and
  // the range asked for is then read on its own, so the read fails only if
  // that range does. On error `out` is unspecified.
  Status Read(uint64_t id, const store::ByteSink& sink, uint64_t length, uint64_t offset, size_t n, char* out);

 private:
  struct Window {
    Window(uint64_t id, uint64_t begin) : id(id), begin(begin) {}
    const uint64_t id;
    const uint64_t begin;
    std::mutex mu;      // held while loading; readers wait on it
    bool loaded = false;  // GUARDED_BY(mu)
    // GUARDED_BY(mu); [begin, begin + size) of the file, in kWindowBytes
    std::unique_ptr<char[]> bytes;
  };

  // The window of `id` starting at `begin`, found or added as most recent.
  std::shared_ptr<Window> Find(uint64_t id, uint64_t begin);

  // A buffer of kWindowBytes: a spare one, or a new one.
  std::unique_ptr<char[]> TakeBuffer();

  std::mutex mu_;
  std::list<std::shared_ptr<Window>> windows_;  // GUARDED_BY(mu_), most recent first
  std::vector<std::unique_ptr<char[]>> spare_;  // GUARDED_BY(mu_), at most kWindows
};

}  // namespace upfs::session
