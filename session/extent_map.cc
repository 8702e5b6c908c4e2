#include "session/extent_map.h"

#include <algorithm>
#include <iterator>

namespace upfs::session {

void ExtentMap::Add(uint64_t begin, uint64_t end) {
  if (begin >= end) return;
  // Start from the last range beginning at or before `begin`, which may
  // touch or overlap the new one.
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) {
      begin = prev->first;
      end = std::max(end, prev->second);
      it = ranges_.erase(prev);
    }
  }
  while (it != ranges_.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(begin, end);
}

void ExtentMap::Truncate(uint64_t length) {
  auto it = ranges_.lower_bound(length);
  ranges_.erase(it, ranges_.end());
  if (!ranges_.empty()) {
    auto last = std::prev(ranges_.end());
    if (last->second > length) last->second = length;
  }
}

bool ExtentMap::Intersects(uint64_t begin, uint64_t end) const {
  if (begin >= end) return false;
  auto it = ranges_.lower_bound(end);  // first range starting at/after end
  if (it == ranges_.begin()) return false;
  --it;
  return it->second > begin;
}

std::vector<Extent> ExtentMap::Covered(uint64_t begin, uint64_t end) const {
  std::vector<Extent> out;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && it->first < end; ++it) {
    uint64_t b = std::max(begin, it->first), e = std::min(end, it->second);
    if (b < e) out.push_back({b, e});
  }
  return out;
}

std::vector<Extent> ExtentMap::Missing(uint64_t length) const {
  std::vector<Extent> out;
  uint64_t pos = 0;
  for (const auto& [b, e] : ranges_) {
    if (b >= length) break;
    if (b > pos) out.push_back({pos, b});
    pos = std::max(pos, e);
  }
  if (pos < length) out.push_back({pos, length});
  return out;
}

uint64_t ExtentMap::ContiguousEnd(uint64_t offset) const {
  auto it = ranges_.upper_bound(offset);
  if (it == ranges_.begin()) return offset;
  --it;
  return it->second > offset ? it->second : offset;
}

uint64_t ExtentMap::End() const { return ranges_.empty() ? 0 : ranges_.rbegin()->second; }

uint64_t ExtentMap::BytesReceived() const {
  uint64_t total = 0;
  for (const auto& [b, e] : ranges_) total += e - b;
  return total;
}

}  // namespace upfs::session
