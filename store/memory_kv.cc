#include "store/memory_kv.h"

#include <mutex>

namespace upfs::store {
namespace {

// Key comparisons made by each thread in any MemoryKv.
thread_local uint64_t thread_key_comparisons = 0;

}  // namespace

bool MemoryKv::CountingLess::operator()(std::string_view a, std::string_view b) const {
  ++thread_key_comparisons;
  return a < b;
}

uint64_t MemoryKv::ThreadKeyComparisons() const { return thread_key_comparisons; }

Status MemoryKv::Get(std::string_view key, std::string* value) const {
  ReaderLock lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return Status::NotFound("key");
  *value = it->second;
  return Status::OK();
}

Status MemoryKv::Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const {
  ReaderLock lock(mu_);
  for (auto it = map_.lower_bound(begin); it != map_.end() && std::string_view(it->first) < end;
       ++it) {
    if (!visit(it->first, it->second)) break;
  }
  return Status::OK();
}

Status MemoryKv::Commit(const KvWrite& write, bool /*sync*/) {
  WriterLock lock(mu_);
  for (const auto& [key, value] : write.ops) {
    if (value) {
      map_.insert_or_assign(key, *value);
    } else {
      map_.erase(key);
    }
  }
  return Status::OK();
}

size_t MemoryKv::ApproximateBytes() const {
  ReaderLock lock(mu_);
  size_t total = 0;
  for (const auto& [k, v] : map_) total += k.size() + v.size();
  return total;
}

}  // namespace upfs::store
