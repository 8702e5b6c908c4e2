#include "session/asset_read_cache.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace upfs::session {

AssetReadCache::AssetReadCache(size_t readahead, size_t window_bytes)
    : window_bytes_(std::clamp(window_bytes, kMinWindowBytes, kMaxWindowBytes)),
      windows_max_(std::max(kMinWindows, kCacheBytes / window_bytes_)),
      readahead_(std::min(readahead, windows_max_ / 2)) {}

AssetReadCache::~AssetReadCache() {
  std::vector<std::thread> loaders;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    loads_.clear();
    loaders.swap(loaders_);
  }
  load_cv_.SignalAll();
  for (std::thread& t : loaders) t.join();
}

AssetReadCache::WindowList::iterator AssetReadCache::LookupLocked(uint64_t id, uint64_t begin) {
  return std::find_if(windows_.begin(), windows_.end(), [&](const std::shared_ptr<Window>& w) {
    return w->id == id && w->begin == begin;
  });
}

std::shared_ptr<AssetReadCache::Window> AssetReadCache::AddLocked(uint64_t id, uint64_t begin) {
  windows_.push_front(std::make_shared<Window>(id, begin));
  if (windows_.size() > windows_max_) {
    // Its buffer is spare unless a reader still copies out of it, or a
    // load ahead still fills it (then it goes with the last one).
    std::shared_ptr<Window>& last = windows_.back();
    if (last.use_count() == 1 && last->bytes && spare_.size() < windows_max_)
      spare_.push_back(std::move(last->bytes));
    windows_.pop_back();
  }
  return windows_.front();
}

std::shared_ptr<AssetReadCache::Window> AssetReadCache::Find(
    uint64_t id, const std::shared_ptr<const store::ByteSink>& sink, uint64_t length,
    uint64_t begin) {
  std::shared_ptr<Window> w;
  bool queued = false;
  {
    MutexLock lock(mu_);
    auto it = LookupLocked(id, begin);
    if (it != windows_.end()) {
      windows_.splice(windows_.begin(), windows_, it);
      w = windows_.front();
    } else {
      w = AddLocked(id, begin);
    }
    if (!w->read) {
      w->read = true;
      queued = ReadAheadLocked(id, sink, length, begin);
    }
  }
  if (queued) load_cv_.SignalAll();
  return w;
}

std::unique_ptr<char[]> AssetReadCache::TakeBuffer() {
  {
    MutexLock lock(mu_);
    if (!spare_.empty()) {
      std::unique_ptr<char[]> b = std::move(spare_.back());
      spare_.pop_back();
      return b;
    }
  }
  return std::unique_ptr<char[]>(new char[window_bytes_]);
}

Status AssetReadCache::LoadLocked(Window& w, const store::ByteSink& sink, size_t size) {
  if (w.loaded) return Status::OK();
  if (!w.bytes) w.bytes = TakeBuffer();
  UPFS_RETURN_IF_ERROR(sink.ReadAt(w.begin, size, w.bytes.get()));
  w.loaded = true;
  return Status::OK();
}

bool AssetReadCache::ReadAheadLocked(uint64_t id,
                                     const std::shared_ptr<const store::ByteSink>& sink,
                                     uint64_t length, uint64_t begin) {
  if (readahead_ == 0 || stopping_) return false;
  // Sequential: the window before this one was read (or this is the first).
  if (begin > 0 && LookupLocked(id, begin - window_bytes_) == windows_.end()) return false;
  bool queued = false;
  for (size_t k = 1; k <= readahead_; ++k) {
    const uint64_t next = begin + k * window_bytes_;
    if (next >= length) break;
    if (LookupLocked(id, next) != windows_.end()) continue;
    loads_.push_back(Load{AddLocked(id, next), sink,
                          static_cast<size_t>(std::min<uint64_t>(window_bytes_, length - next))});
    queued = true;
  }
  if (queued) {
    while (loaders_.size() < readahead_) loaders_.emplace_back([this] { LoadLoop(); });
  }
  return queued;
}

void AssetReadCache::LoadLoop() {
  MutexLock lock(mu_);
  for (;;) {
    while (!stopping_ && loads_.empty()) load_cv_.Wait(mu_);
    if (stopping_) return;
    Load load = std::move(loads_.front());
    loads_.pop_front();
    // Fell out of the cache before its turn, and no reader holds it.
    if (load.window.use_count() == 1) continue;
    lock.Unlock();
    {
      MutexLock window_lock(load.window->mu);
      // A failure stays unloaded: the reader that needs it reports it.
      LoadLocked(*load.window, *load.sink, load.size).IgnoreError();
    }
    load = Load{};  // the sink and window are released outside mu_
    lock.Lock();
  }
}

AssetReadCache::Pinned::~Pinned() {
  if (cache_ != nullptr) cache_->Unpin(windows_);
}

size_t AssetReadCache::SpareBuffers() {
  MutexLock lock(mu_);
  return spare_.size();
}

void AssetReadCache::Unpin(std::vector<std::shared_ptr<Window>>& windows) {
  MutexLock lock(mu_);
  // Under mu_, so that of two Pinned of one window that fell out, the
  // last to let go sees itself as the only holder.
  for (std::shared_ptr<Window>& w : windows) {
    if (w.use_count() == 1 && w->bytes && spare_.size() < windows_max_)
      spare_.push_back(std::move(w->bytes));
    w.reset();
  }
}

Status AssetReadCache::Read(uint64_t id, const std::shared_ptr<const store::ByteSink>& sink,
                            uint64_t length, uint64_t offset, size_t n, char* out) {
  Pinned pinned;
  UPFS_RETURN_IF_ERROR(Pin(id, sink, length, offset, n, &pinned));
  for (std::string_view piece : pinned.pieces()) {
    std::memcpy(out, piece.data(), piece.size());
    out += piece.size();
  }
  return Status::OK();
}

Status AssetReadCache::Pin(uint64_t id, const std::shared_ptr<const store::ByteSink>& sink,
                           uint64_t length, uint64_t offset, size_t n, Pinned* out) {
  out->cache_ = this;
  while (n > 0) {
    const uint64_t begin = offset - offset % window_bytes_;
    std::shared_ptr<Window> w = Find(id, sink, length, begin);
    const size_t window_size =
        static_cast<size_t>(std::min<uint64_t>(window_bytes_, length - begin));
    const size_t at = static_cast<size_t>(offset - begin);
    const size_t take = std::min(n, window_size - at);
    bool loaded;
    {
      MutexLock lock(w->mu);
      loaded = LoadLocked(*w, *sink, window_size).ok();
    }
    if (loaded) {
      // Loaded bytes never change, and the buffer stays with the window
      // while this holds it (AddLocked takes back only unheld buffers).
      out->pieces_.emplace_back(w->bytes.get() + at, take);
      out->windows_.push_back(std::move(w));
    } else {
      // A damaged chunk somewhere in the window: read just the range
      // asked for, so that only reads touching the damage fail, as
      // without the cache.
      std::unique_ptr<char[]> own(new char[take]);
      UPFS_RETURN_IF_ERROR(sink->ReadAt(offset, take, own.get()));
      out->pieces_.emplace_back(own.get(), take);
      out->own_.push_back(std::move(own));
    }
    offset += take;
    n -= take;
  }
  return Status::OK();
}

}  // namespace upfs::session
