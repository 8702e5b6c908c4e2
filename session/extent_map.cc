#include "session/extent_map.h"

#include <algorithm>
#include <iterator>

namespace upfs::session {

void ExtentMap::Spill() {
  if (ranges_) return;
  ranges_ = std::make_unique<std::map<uint64_t, uint64_t>>();
  if (single_.begin < single_.end) ranges_->emplace(single_.begin, single_.end);
  single_ = {};
}

void ExtentMap::Unspill() {
  if (!ranges_ || ranges_->size() > 1) return;
  single_ = ranges_->empty() ? Extent{} : Extent{ranges_->begin()->first, ranges_->begin()->second};
  ranges_.reset();
}

void ExtentMap::Add(uint64_t begin, uint64_t end) {
  if (begin >= end) return;
  if (!ranges_ &&
      (single_.begin == single_.end || (begin <= single_.end && single_.begin <= end))) {
    // None yet, or touching the one range: stays one range, inline.
    single_ = single_.begin == single_.end
                  ? Extent{begin, end}
                  : Extent{std::min(begin, single_.begin), std::max(end, single_.end)};
    return;
  }
  Spill();
  auto& ranges = *ranges_;
  // Start from the last range beginning at or before `begin`, which may
  // touch or overlap the new one.
  auto it = ranges.upper_bound(begin);
  if (it != ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) {
      begin = prev->first;
      end = std::max(end, prev->second);
      it = ranges.erase(prev);
    }
  }
  while (it != ranges.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges.erase(it);
  }
  ranges.emplace(begin, end);
  Unspill();
}

void ExtentMap::Truncate(uint64_t length) {
  if (!ranges_) {
    single_.end = std::min(single_.end, length);
    if (single_.end <= single_.begin) single_ = {};
    return;
  }
  auto& ranges = *ranges_;
  ranges.erase(ranges.lower_bound(length), ranges.end());
  if (!ranges.empty()) {
    auto last = std::prev(ranges.end());
    if (last->second > length) last->second = length;
  }
  Unspill();
}

bool ExtentMap::Intersects(uint64_t begin, uint64_t end) const {
  if (begin >= end) return false;
  if (!ranges_) return single_.begin < end && begin < single_.end;
  auto it = ranges_->lower_bound(end);  // first range starting at/after end
  if (it == ranges_->begin()) return false;
  --it;
  return it->second > begin;
}

std::vector<Extent> ExtentMap::Covered(uint64_t begin, uint64_t end) const {
  std::vector<Extent> out;
  auto add = [&](uint64_t b, uint64_t e) {
    b = std::max(begin, b);
    e = std::min(end, e);
    if (b < e) out.push_back({b, e});
  };
  if (!ranges_) {
    add(single_.begin, single_.end);
    return out;
  }
  auto it = ranges_->upper_bound(begin);
  if (it != ranges_->begin()) --it;
  for (; it != ranges_->end() && it->first < end; ++it) add(it->first, it->second);
  return out;
}

std::vector<Extent> ExtentMap::Missing(uint64_t length) const {
  std::vector<Extent> out;
  uint64_t pos = 0;
  auto step = [&](uint64_t b, uint64_t e) {
    if (b >= length) return false;
    if (b > pos) out.push_back({pos, b});
    pos = std::max(pos, e);
    return true;
  };
  if (!ranges_) {
    if (single_.begin < single_.end) step(single_.begin, single_.end);
  } else {
    for (const auto& [b, e] : *ranges_) {
      if (!step(b, e)) break;
    }
  }
  if (pos < length) out.push_back({pos, length});
  return out;
}

std::vector<Extent> ExtentMap::Minus(const ExtentMap& other) const {
  std::vector<Extent> out;
  for (const Extent& e : Covered(0, UINT64_MAX)) {
    uint64_t at = e.begin;
    for (const Extent& kept : other.Covered(e.begin, e.end)) {
      if (kept.begin > at) out.push_back({at, kept.begin});
      at = kept.end;
    }
    if (at < e.end) out.push_back({at, e.end});
  }
  return out;
}

uint64_t ExtentMap::ContiguousEnd(uint64_t offset) const {
  if (!ranges_) return single_.begin <= offset && offset < single_.end ? single_.end : offset;
  auto it = ranges_->upper_bound(offset);
  if (it == ranges_->begin()) return offset;
  --it;
  return it->second > offset ? it->second : offset;
}

uint64_t ExtentMap::End() const { return ranges_ ? ranges_->rbegin()->second : single_.end; }

uint64_t ExtentMap::BytesReceived() const {
  if (!ranges_) return single_.end - single_.begin;
  uint64_t total = 0;
  for (const auto& [b, e] : *ranges_) total += e - b;
  return total;
}

}  // namespace upfs::session
