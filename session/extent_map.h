// ExtentMap: which bytes of a file have arrived, as disjoint, sorted,
// merged half-open ranges. Memory is O(number of separate ranges): adjacent
// and overlapping ranges merge on insert, so a file written in order is one
// range however many writes it took. That common case (zero or one range)
// is held inline without a heap allocation; the map holds two or more.
//
// Thread safety: none; the owner's lock guards it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "store/store.h"

namespace upfs::session {

using store::Extent;

class ExtentMap {
 public:
  void Add(uint64_t begin, uint64_t end);
  // Forgets every byte at or after `length`.
  void Truncate(uint64_t length);
  void Clear() {
    ranges_.reset();
    single_ = {};
  }

  bool Intersects(uint64_t begin, uint64_t end) const;
  // The parts of [begin, end) that have arrived.
  std::vector<Extent> Covered(uint64_t begin, uint64_t end) const;
  // The parts of [0, length) that have not arrived.
  std::vector<Extent> Missing(uint64_t length) const;
  // The parts that have arrived here and not in `other`.
  std::vector<Extent> Minus(const ExtentMap& other) const;
  // End of the range that contains `offset`, or `offset` if none does.
  uint64_t ContiguousEnd(uint64_t offset) const;
  // End of the last range (0 when empty).
  uint64_t End() const;
  uint64_t BytesReceived() const;
  size_t RangeCount() const {
    return ranges_ ? ranges_->size() : single_.begin < single_.end ? 1 : 0;
  }

 private:
  // Moves the inline range into the map / back out when it is the only one.
  void Spill();
  void Unspill();

  // Invariant: either ranges_ is null and single_ is the one range (or
  // none: begin == end), or single_ is empty and ranges_ holds two or more.
  Extent single_;
  std::unique_ptr<std::map<uint64_t, uint64_t>> ranges_;  // begin -> end
};

}  // namespace upfs::session
