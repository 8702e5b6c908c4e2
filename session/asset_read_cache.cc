#include "session/asset_read_cache.h"

#include <algorithm>
#include <cstring>

namespace upfs::session {

std::shared_ptr<AssetReadCache::Window> AssetReadCache::Find(uint64_t id, uint64_t begin) {
  std::lock_guard lock(mu_);
  for (auto it = windows_.begin(); it != windows_.end(); ++it) {
    if ((*it)->id == id && (*it)->begin == begin) {
      windows_.splice(windows_.begin(), windows_, it);
      return windows_.front();
    }
  }
  windows_.push_front(std::make_shared<Window>(id, begin));
  if (windows_.size() > kWindows) {
    // Its buffer is spare unless a reader still copies out of it (then it
    // goes with the last one).
    std::shared_ptr<Window>& last = windows_.back();
    if (last.use_count() == 1 && last->bytes && spare_.size() < kWindows) spare_.push_back(std::move(last->bytes));
    windows_.pop_back();
  }
  return windows_.front();
}

std::unique_ptr<char[]> AssetReadCache::TakeBuffer() {
  {
    std::lock_guard lock(mu_);
    if (!spare_.empty()) {
      std::unique_ptr<char[]> b = std::move(spare_.back());
      spare_.pop_back();
      return b;
    }
  }
  return std::unique_ptr<char[]>(new char[kWindowBytes]);
}

Status AssetReadCache::Read(uint64_t id, const store::ByteSink& sink, uint64_t length, uint64_t offset, size_t n,
                            char* out) {
  while (n > 0) {
    const uint64_t begin = offset - offset % kWindowBytes;
    std::shared_ptr<Window> w = Find(id, begin);
    const size_t window_size = static_cast<size_t>(std::min<uint64_t>(kWindowBytes, length - begin));
    const size_t at = static_cast<size_t>(offset - begin);
    const size_t take = std::min(n, window_size - at);
    std::lock_guard lock(w->mu);
    if (!w->loaded) {
      if (!w->bytes) w->bytes = TakeBuffer();
      if (sink.ReadAt(begin, window_size, w->bytes.get()).ok()) {
        w->loaded = true;
      } else {
        // A damaged chunk somewhere in the window: read just the range
        // asked for, so that only reads touching the damage fail, as
        // without the cache.
        UPFS_RETURN_IF_ERROR(sink.ReadAt(offset, take, out));
        out += take;
        offset += take;
        n -= take;
        continue;
      }
    }
    std::memcpy(out, w->bytes.get() + at, take);
    out += take;
    offset += take;
    n -= take;
  }
  return Status::OK();
}

}  // namespace upfs::session
