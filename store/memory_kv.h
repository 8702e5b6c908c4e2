// MemoryKv: an in-memory Kv for tests. Nothing survives the object; "sync"
// is a no-op. Thread-safe (one reader/writer lock).
#pragma once

#include <map>
#include <shared_mutex>
#include <string>

#include "base/mutex.h"
#include "store/kv.h"

namespace upfs::store {

class MemoryKv : public Kv {
 public:
  Status Get(std::string_view key, std::string* value) const override;
  Status Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const override;
  Status Commit(const KvWrite& write, bool sync) override;
  Status Compact(std::string_view, std::string_view) override { return Status::OK(); }

  uint64_t ThreadKeyComparisons() const override;

  // Total bytes of keys and values held; lets tests see space freed.
  size_t ApproximateBytes() const;

 private:
  // Byte order of std::string_view, counting each thread's comparisons.
  struct CountingLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
  };

  mutable SharedMutex mu_;
  std::map<std::string, std::string, CountingLess> map_ GUARDED_BY(mu_);
};

}  // namespace upfs::store
