#include "store/kv_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "store/records.h"

namespace upfs::store {
namespace {

// Ids below this are reserved for fixed objects (the mount root, sessions/,
// assets/).
constexpr uint64_t kFirstId = 16;

std::string EncodeLength(uint64_t n) {
  std::string v;
  keys::AppendBigEndian64(&v, n);
  return v;
}

std::string BlobText(uint64_t blob) { return "blob " + std::to_string(blob); }

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// One stored chunk: [begin, begin + length), whose bytes hash to checksum;
// an inline chunk's bytes come with it, a packed chunk says where they are.
struct ChunkRef {
  uint64_t begin = 0;
  uint64_t length = 0;
  uint64_t checksum = 0;
  std::optional<std::string> inline_bytes;
  std::optional<PackedAt> packed;
  uint64_t end() const { return begin + length; }
  bool operator==(const ChunkRef&) const = default;
};

// Also refuses a chunk longer than kMaxChunkBytes: OverlappingChunks
// relies on none being longer.
Status DecodeExtent(std::string_view key, std::string_view value, ChunkRef* out) {
  std::optional<std::string_view> bytes;
  uint64_t blob = 0;
  if (!keys::ParsePair(key, &blob, &out->begin) ||
      !DecodeExtentValue(value, &out->length, &out->checksum, &bytes, &out->packed) ||
      out->length > kMaxChunkBytes) {
    return Status::Corruption("malformed extent record for " + BlobText(keys::BlobOf(key)));
  }
  if (bytes) {
    out->inline_bytes.emplace(*bytes);
  } else {
    out->inline_bytes.reset();
  }
  return Status::OK();
}

// The bound in `blob`'s end record; nullopt when there is none (then the
// blob has no chunks).
Status ReadBlobEnd(const Kv& kv, uint64_t blob, std::optional<uint64_t>* end) {
  std::string value;
  Status s = kv.Get(keys::BlobEnd(blob), &value);
  if (s.IsNotFound()) {
    end->reset();
    return Status::OK();
  }
  UPFS_RETURN_IF_ERROR(s);
  uint64_t v = 0;
  if (!DecodeBlobEnd(value, &v))
    return Status::Corruption("malformed end record for " + BlobText(blob));
  *end = std::min(v, kMaxBlobLength);
  return Status::OK();
}

// Visits `blob`'s chunks that start in [from, to), in order, while
// `visit` returns true, stopping at the first that fails to decode.
Status ScanChunks(const Kv& kv, uint64_t blob, uint64_t from, uint64_t to,
                  const std::function<bool(ChunkRef&)>& visit) {
  Status decode;
  UPFS_RETURN_IF_ERROR(kv.Scan(keys::Extent(blob, from), keys::Extent(blob, to),
                               [&](std::string_view k, std::string_view v) {
                                 ChunkRef c;
                                 decode = DecodeExtent(k, v, &c);
                                 return decode.ok() && visit(c);
                               }));
  return decode;
}

// Chunks of `blob` that intersect [begin, end), in order, as the extent
// records list them. Sets *bound, when given, to the blob's end record.
//
// Why this shape: a LevelDB seek, or a step back, lands on the nearest live
// key, stepping over every deleted key on the way (it has no bound to stop
// at), and deleted keys are everywhere: the chunks of aborted and expired
// sessions' files, and after the newest blob's chunks, the node records of
// every session committed so far. A scan that left this blob's keys would
// cost in proportion to the store's history (G6, docs/semantics.md). So nothing here
// steps back, and a scan runs only when the end record says the blob has
// chunks, from no earlier than a chunk reaching `begin` could start (none
// is longer than kMaxChunkBytes), to no further than the end record: a
// live key of this blob, at which it stops at the latest.
Status OverlappingChunks(const Kv& kv, uint64_t blob, uint64_t begin, uint64_t end,
                         std::vector<ChunkRef>* out, std::optional<uint64_t>* bound = nullptr) {
  out->clear();
  std::optional<uint64_t> stored;
  UPFS_RETURN_IF_ERROR(ReadBlobEnd(kv, blob, &stored));
  if (bound) *bound = stored;
  if (!stored || begin >= *stored) return Status::OK();
  const uint64_t from = begin >= kMaxChunkBytes ? begin - kMaxChunkBytes + 1 : 0;
  return ScanChunks(kv, blob, from, std::min(end, *stored), [&](ChunkRef& c) {
    if (c.end() > begin) out->push_back(std::move(c));
    return true;
  });
}

// OK when `data` is what the extent record `c` of `blob` describes.
// `present`: how many of its bytes the blob files still hold.
Status VerifyChunk(uint64_t blob, const ChunkRef& c, std::string_view data, size_t present) {
  std::string where = BlobText(blob) + ": chunk at offset " + std::to_string(c.begin);
  if (present < c.length) {
    return Status::Corruption(where + " (" + std::to_string(c.length) +
                              " bytes) is listed but only " + std::to_string(present) +
                              " of its bytes are stored");
  }
  if (uint64_t actual = ChunkChecksum(data); actual != c.checksum) {
    return Status::Corruption(where + " (" + std::to_string(c.length) +
                              " bytes) fails its checksum: extent record " + Hex64(c.checksum) +
                              ", bytes " + Hex64(actual));
  }
  return Status::OK();
}

Status ReadChunk(const BlobFiles& blobs, uint64_t blob, const ChunkRef& c, std::string* data) {
  if (c.inline_bytes) {
    *data = *c.inline_bytes;
    return VerifyChunk(blob, c, *data, data->size());
  }
  data->resize(c.length);
  size_t present = 0;
  if (c.packed) {
    UPFS_RETURN_IF_ERROR(
        blobs.Read(c.packed->pack, c.packed->offset, c.length, data->data(), &present));
  } else {
    UPFS_RETURN_IF_ERROR(blobs.Read(blob, c.begin, c.length, data->data(), &present));
  }
  return VerifyChunk(blob, c, *data, present);
}

uint64_t RoundUpToPack(uint64_t n) { return (n + kPackAlign - 1) / kPackAlign * kPackAlign; }

// The pages a packed chunk holds alone (KvStore::WriteToPack).
PackedRange PagesOf(const ChunkRef& c) {
  return {c.packed->pack, c.packed->offset, RoundUpToPack(c.length)};
}

// Adds the pages of packed chunk `c`, whose record `write` removes, to
// *unpacked, and their pending-free record to `write` (KvStore::FreePacked
// removes it once they are freed).
void AddUnpack(const ChunkRef& c, KvWrite* write, std::vector<PackedRange>* unpacked) {
  const PackedRange r = PagesOf(c);
  unpacked->push_back(r);
  write->Put(keys::PendingFree(r.pack, r.offset), EncodeLength(r.length));
}

// Where a chunk's bytes are kept.
enum class Placement { kBlobFiles, kInline, kPacked };

// The extent record of `data` at `offset`; an inline one holds the bytes, a
// packed one says where in its pack (`at`) they are.
void PutChunk(uint64_t blob, uint64_t offset, std::string_view data, Placement placement,
              KvWrite* write, PackedAt at = {}) {
  std::string value;
  switch (placement) {
    case Placement::kInline:
      value = EncodeInlineExtentValue(data);
      break;
    case Placement::kPacked:
      value = EncodePackedExtentValue(data.size(), ChunkChecksum(data), at);
      break;
    case Placement::kBlobFiles:
      value = EncodeExtentValue(data.size(), ChunkChecksum(data));
      break;
  }
  write->Put(keys::Extent(blob, offset), std::move(value));
}

// Adds to `write` what removes [begin, end) from the stored chunks: chunks
// inside go, chunks straddling an edge keep their outside part (whose bytes
// stay where they are, under a record of their own; a packed chunk's kept
// part goes inline, and its pages are freed, so that a pack's pages are
// each held by at most one chunk). Adds the records removed to *freed, the
// packs' pages freed to *unpacked, raises *stored_end to the end of the
// last chunk seen, and sets *bound to the blob's end record (which stays
// true).
Status AddPunch(const Kv& kv, const BlobFiles& blobs, uint64_t blob, uint64_t begin, uint64_t end,
                KvWrite* write, uint64_t* freed, std::vector<PackedRange>* unpacked,
                uint64_t* stored_end, std::optional<uint64_t>* bound) {
  std::vector<ChunkRef> chunks;
  UPFS_RETURN_IF_ERROR(OverlappingChunks(kv, blob, begin, end, &chunks, bound));
  for (const ChunkRef& c : chunks) {
    *stored_end = std::max(*stored_end, c.end());
    if (c.begin >= begin && c.end() <= end) {
      write->Delete(keys::Extent(blob, c.begin));
      if (c.packed) AddUnpack(c, write, unpacked);
      ++*freed;
      continue;
    }
    // The kept part is re-checksummed only from bytes that verify; its
    // bytes stay where they are.
    std::string data;
    UPFS_RETURN_IF_ERROR(ReadChunk(blobs, blob, c, &data));
    const Placement placement =
        c.inline_bytes || c.packed ? Placement::kInline : Placement::kBlobFiles;
    if (c.packed) AddUnpack(c, write, unpacked);
    if (c.begin < begin) {
      // Keep the head under the same key.
      PutChunk(blob, c.begin, std::string_view(data).substr(0, begin - c.begin), placement, write);
    } else {
      write->Delete(keys::Extent(blob, c.begin));
    }
    if (c.end() > end) {
      PutChunk(blob, end, std::string_view(data).substr(end - c.begin), placement, write);
    }
  }
  return Status::OK();
}

// Trims blob `blob`'s records to `length` bytes (0: all of them, its end
// record too).
Status AddTruncate(const Kv& kv, const BlobFiles& blobs, uint64_t blob, uint64_t length,
                   KvWrite* write, uint64_t* freed, std::vector<PackedRange>* unpacked,
                   uint64_t* stored_end) {
  std::optional<uint64_t> bound;
  UPFS_RETURN_IF_ERROR(AddPunch(kv, blobs, blob, length, kMaxBlobLength, write, freed, unpacked,
                                stored_end, &bound));
  if (bound && length == 0) {
    write->Delete(keys::BlobEnd(blob));
  } else if (bound && length < *bound) {
    write->Put(keys::BlobEnd(blob), EncodeBlobEnd(length));
  }
  return Status::OK();
}

// What a read returns for bytes no chunk holds.
enum class Holes { kZeros, kCorruption };

// The extent records of a committed blob, read a span at a time: they
// never change, and a sequential reader would otherwise ask the store for
// its end record and its chunks at every read. On RADOS those are two
// omap reads per window besides the bytes', and they cost the OSD more
// CPU than the bytes (perf of a cold read). Thread-safe: the loads ahead
// of one reader share the handle.
class CommittedRecords {
 public:
  // A span covers this much of the file past a read, or kMaxRecords
  // records (small chunks) past the read's own, so memory per open file
  // stays bounded.
  static constexpr uint64_t kSpanBytes = uint64_t{64} << 20;
  static constexpr size_t kMaxRecords = 1024;

  // Chunks of `blob` that intersect [begin, end), as OverlappingChunks.
  Status Overlapping(const Kv& kv, uint64_t blob, uint64_t begin, uint64_t end,
                     std::vector<ChunkRef>* out) {
    out->clear();
    MutexLock lock(mu_);
    if (!bound_known_) {
      UPFS_RETURN_IF_ERROR(ReadBlobEnd(kv, blob, &bound_));
      bound_known_ = true;
    }
    if (!bound_ || begin >= *bound_) return Status::OK();
    const uint64_t from = begin >= kMaxChunkBytes ? begin - kMaxChunkBytes + 1 : 0;
    const uint64_t to = std::min(end, *bound_);
    if (from < from_ || to > to_) UPFS_RETURN_IF_ERROR(Load(kv, blob, from, to));
    auto it = std::lower_bound(records_.begin(), records_.end(), from,
                               [](const ChunkRef& c, uint64_t at) { return c.begin < at; });
    for (; it != records_.end() && it->begin < to; ++it) {
      if (it->end() > begin) out->push_back(*it);
    }
    return Status::OK();
  }

 private:
  // Reads the records of chunks starting in [from, max(to, from +
  // kSpanBytes)), up to the end record, or as many of them as fit.
  Status Load(const Kv& kv, uint64_t blob, uint64_t from, uint64_t to) REQUIRES(mu_) {
    records_.clear();
    from_ = to_ = 0;
    const uint64_t span_end = std::min(*bound_, std::max(to, from + kSpanBytes));
    std::optional<uint64_t> stopped_at;
    size_t ahead = 0;  // records past what was asked for
    // Gathered outside records_: the callback is a function of its own
    // to the lock analysis, which does not know mu_ is held there.
    std::vector<ChunkRef> loaded;
    UPFS_RETURN_IF_ERROR(ScanChunks(kv, blob, from, span_end, [&](ChunkRef& c) {
      if (c.begin >= to && ahead++ == kMaxRecords) {
        stopped_at = c.begin;
        return false;
      }
      loaded.push_back(std::move(c));
      return true;
    }));
    records_ = std::move(loaded);
    from_ = from;
    to_ = stopped_at.value_or(span_end);  // every chunk starting before to_ is here
    return Status::OK();
  }

  Mutex mu_;
  bool bound_known_ GUARDED_BY(mu_) = false;
  std::optional<uint64_t> bound_ GUARDED_BY(mu_);  // the end record
  // Chunk starts records_ holds.
  uint64_t from_ GUARDED_BY(mu_) = 0;
  uint64_t to_ GUARDED_BY(mu_) = 0;
  std::vector<ChunkRef> records_ GUARDED_BY(mu_);
};

class KvBlob : public ByteSink {
 public:
  KvBlob(KvStore* store, uint64_t blob, Holes holes)
      : store_(store),
        kv_(store->kv()),
        blobs_(store->blobs()),
        lock_(store->BlobLock(blob)),
        blob_(blob),
        holes_(holes),
        committed_(holes == Holes::kCorruption ? std::make_unique<CommittedRecords>() : nullptr) {}

  Status WriteAt(uint64_t offset, std::string_view data) override {
    if (data.empty()) return Status::OK();
    if (offset >= kMaxBlobLength || data.size() > kMaxBlobLength - offset) {
      return Status::TooLarge("write at offset " + std::to_string(offset) +
                              " ends beyond the largest file upfs stores");
    }
    UPFS_RETURN_IF_ERROR(kv_->CheckRoomForData(data.size()));
    uint64_t end = offset + data.size();
    // Bytes first, then the records that make them visible: a crash in
    // between leaves bytes no record names. Inline bytes come with their
    // record. A small write's bytes go to a pack before the blob's lock is
    // taken (a new pack's record is written under the store's apply lock,
    // which is taken before blob locks).
    const Placement placement = end > kInlineChunkEnd ? Placement::kBlobFiles
                                : store_->UsesPacks() ? Placement::kPacked
                                                      : Placement::kInline;
    PackUse pack(store_);
    if (placement == Placement::kPacked) UPFS_RETURN_IF_ERROR(pack.Write(data));
    std::unique_lock lock(lock_);
    KvWrite punch;
    std::vector<PackedRange> unpacked;  // freed once the write is in
    uint64_t overwritten = 0,
             stored_end = 0;  // not reclaimed separately: the new chunks take their place
    std::optional<uint64_t> bound;
    // The pack's bytes that no record will name are freed.
    auto free_packed_bytes = [&] {
      if (placement == Placement::kPacked) {
        store_->FreePacked({{pack.at().pack, pack.at().offset, RoundUpToPack(data.size())}},
                           /*recorded=*/false);
      }
    };
    Status st = AddPunch(*kv_, *blobs_, blob_, offset, end, &punch, &overwritten, &unpacked,
                         &stored_end, &bound);
    if (!st.ok()) {
      free_packed_bytes();
      return st;
    }
    if (placement == Placement::kBlobFiles) st = blobs_->Write(blob_, offset, data);
    if (st.ok()) {
      KvWrite write = punch;
      for (uint64_t pos = 0; pos < data.size(); pos += kMaxChunkBytes) {
        PutChunk(blob_, offset + pos, data.substr(pos, kMaxChunkBytes), placement, &write,
                 placement == Placement::kPacked ? pack.at() : PackedAt{});
      }
      if (!bound || *bound < end) write.Put(keys::BlobEnd(blob_), EncodeBlobEnd(end));
      st = kv_->Commit(write, /*sync=*/false);
      if (st.ok()) {
        store_->FreePacked(unpacked);
        return st;
      }
    }
    free_packed_bytes();
    // Some of the overwritten bytes may have changed: their old records
    // would no longer match, so the range is dropped (it reads as never
    // written, and the client sends it again).
    if (stored_end > offset) {
      if (Status dropped = kv_->Commit(punch, /*sync=*/false); !dropped.ok()) {
        spdlog::error("{}: dropping bytes [{}, {}) after a failed write failed too: {}",
                      BlobText(blob_), offset, end, dropped.ToString());
      } else {
        store_->FreePacked(unpacked);
      }
    }
    return st;
  }

  Status ReadAt(uint64_t offset, size_t n, char* out) const override {
    if (n == 0) return Status::OK();
    if (offset >= kMaxBlobLength) {
      std::memset(out, 0, n);
      if (holes_ == Holes::kCorruption) return Hole(offset, offset + n);
      return Status::OK();
    }
    uint64_t end = offset + std::min<uint64_t>(n, kMaxBlobLength - offset);
    std::shared_lock lock(lock_);
    std::vector<ChunkRef> chunks;
    UPFS_RETURN_IF_ERROR(committed_ ? committed_->Overlapping(*kv_, blob_, offset, end, &chunks)
                                    : OverlappingChunks(*kv_, blob_, offset, end, &chunks));
    if (holes_ == Holes::kCorruption) UPFS_RETURN_IF_ERROR(CheckCoverage(chunks, offset, end));
    // Whole chunks are read, to check each against its record; of those in
    // the blob files, one read from the first one's start to the last
    // one's end: straight into `out` when that lies within it (a reader
    // whose requests line up with the chunks, as the committed files'
    // read cache's do), else into a buffer.
    uint64_t span_begin = UINT64_MAX, span_end = 0;
    for (const ChunkRef& c : chunks) {
      if (c.inline_bytes || c.packed) continue;
      span_begin = std::min(span_begin, c.begin);
      span_end = std::max(span_end, c.end());
    }
    const bool direct = span_end > 0 && span_begin >= offset && span_end <= end;
    char* span = nullptr;
    std::unique_ptr<char[]> buffer;
    size_t present = 0;
    if (span_end > 0) {
      if (direct) {
        span = out + (span_begin - offset);
      } else {
        buffer.reset(new char[span_end - span_begin]);
        span = buffer.get();
      }
      UPFS_RETURN_IF_ERROR(blobs_->Read(blob_, span_begin, span_end - span_begin, span, &present));
    }
    uint64_t filled = offset;  // out is written up to here; holes read as zeros
    for (const ChunkRef& c : chunks) {
      uint64_t from = std::max(c.begin, offset);
      uint64_t to = std::min(c.end(), end);
      if (from > filled) std::memset(out + (filled - offset), 0, from - filled);
      std::string_view bytes;
      std::string packed;
      if (c.inline_bytes) {
        bytes = *c.inline_bytes;
        UPFS_RETURN_IF_ERROR(VerifyChunk(blob_, c, bytes, bytes.size()));
      } else if (c.packed) {
        UPFS_RETURN_IF_ERROR(ReadChunk(*blobs_, blob_, c, &packed));
        bytes = packed;
      } else {
        const uint64_t at = c.begin - span_begin;
        const size_t chunk_present = present > at ? std::min<uint64_t>(present - at, c.length) : 0;
        bytes = std::string_view(span + at, c.length);
        UPFS_RETURN_IF_ERROR(VerifyChunk(blob_, c, bytes, chunk_present));
      }
      // A chunk read straight into `out` is in place already.
      if (c.inline_bytes || c.packed || !direct)
        std::memcpy(out + (from - offset), bytes.data() + (from - c.begin), to - from);
      filled = to;  // chunks are in order and never overlap
    }
    if (offset + n > filled) std::memset(out + (filled - offset), 0, offset + n - filled);
    return Status::OK();
  }

  Status Extents(std::vector<Extent>* out) const override {
    out->clear();
    // As ReadAt: no write of the blob is half done while its records are
    // scanned (RadosKv relies on it; see "Scan" in store/rados_kv.h).
    std::shared_lock lock(lock_);
    std::optional<uint64_t> bound;
    UPFS_RETURN_IF_ERROR(ReadBlobEnd(*kv_, blob_, &bound));
    if (!bound) return Status::OK();  // no chunks, and no scan (see OverlappingChunks)
    return ScanChunks(*kv_, blob_, 0, *bound, [&](const ChunkRef& c) {
      if (!out->empty() && out->back().end == c.begin) {
        out->back().end = c.end();
      } else {
        out->push_back({c.begin, c.end()});
      }
      return true;
    });
  }

 private:
  // Committed files have no holes: bytes no chunk holds are lost data.
  Status CheckCoverage(const std::vector<ChunkRef>& chunks, uint64_t begin, uint64_t end) const {
    uint64_t at = begin;
    for (const ChunkRef& c : chunks) {
      if (c.begin > at) return Hole(at, c.begin);
      at = std::max(at, c.end());
    }
    return at < end ? Hole(at, end) : Status::OK();
  }
  Status Hole(uint64_t begin, uint64_t end) const {
    return Status::Corruption(BlobText(blob_) + ": committed data has no chunk for bytes [" +
                              std::to_string(begin) + ", " + std::to_string(end) + ")");
  }

  // The pack a write's bytes went to, open to it until its records are in.
  class PackUse {
   public:
    explicit PackUse(KvStore* store) : store_(store) {}
    ~PackUse() {
      if (at_) store_->ReleasePack(at_->pack);
    }
    PackUse(const PackUse&) = delete;
    PackUse& operator=(const PackUse&) = delete;
    Status Write(std::string_view data) {
      PackedAt at;
      UPFS_RETURN_IF_ERROR(store_->WriteToPack(data, &at));
      at_ = at;
      return Status::OK();
    }
    PackedAt at() const { return *at_; }

   private:
    KvStore* const store_;
    std::optional<PackedAt> at_;
  };

  KvStore* const store_;
  Kv* const kv_;
  BlobFiles* const blobs_;
  std::shared_mutex& lock_;
  const uint64_t blob_;
  const Holes holes_;
  const std::unique_ptr<CommittedRecords> committed_;  // committed blobs only
};

// Extent records per scan of an upgrade, and at most as many writes per
// batch: memory stays bounded however old the store.
constexpr size_t kUpgradeWindow = 4096;

// Upgrades from format 5 and older, step 1: moves every extent and end
// record from format 5's tag to kExtentTag, a window at a time, each move
// one atomic batch (the new key put, the old one deleted). Interrupted, the
// next open moves what is left. Returns how many records moved.
Result<uint64_t> MoveExtentRecords(Kv& kv) {
  const std::string old_tag(1, keys::kFormat5ExtentTag);
  uint64_t moved = 0;
  // Each window starts after the last key moved, not at the tag: a scan
  // from the tag would step over every deleted key again.
  std::string from = old_tag;
  for (;;) {
    KvWrite write;
    UPFS_RETURN_IF_ERROR(
        kv.Scan(from, keys::PrefixEnd(old_tag), [&](std::string_view k, std::string_view v) {
          std::string to(k);
          to[0] = keys::kExtentTag;
          write.Put(std::move(to), std::string(v));
          write.Delete(std::string(k));
          return write.ops.size() < 2 * kUpgradeWindow;
        }));
    if (write.ops.empty()) return moved;
    from = write.ops.back().first + '\0';
    UPFS_RETURN_IF_ERROR(kv.Commit(write, /*sync=*/false));
    moved += write.ops.size() / 2;
  }
}

// Upgrades from format 3, step 2 (after MoveExtentRecords): writes each
// blob's end record (the end of its last chunk), in batches. Interrupted,
// it starts over at the next open, writing the same records. Returns the
// number of blobs.
Result<uint64_t> AddBlobEnds(Kv& kv) {
  KvWrite write;
  std::optional<std::pair<uint64_t, uint64_t>> blob_end;  // of the blob being read
  uint64_t blobs = 0;
  const std::string tag = keys::ExtentPrefix();
  std::string from = tag;
  for (bool more = true; more;) {
    size_t seen = 0;
    more = false;
    UPFS_RETURN_IF_ERROR(
        kv.Scan(from, keys::PrefixEnd(tag), [&](std::string_view k, std::string_view v) {
          if (seen++ == kUpgradeWindow) {
            from = std::string(k);
            more = true;
            return false;
          }
          uint64_t blob = 0, offset = 0;
          if (!keys::ParsePair(k, &blob, &offset))
            return true;  // not a chunk's: upfs fsck reports it
          uint64_t length = 0, checksum = 0;
          std::optional<std::string_view> bytes;  // format 3 has none
          std::optional<PackedAt> packed;
          // What no record says, no chunk exceeds.
          if (!DecodeExtentValue(v, &length, &checksum, &bytes, &packed)) length = kMaxChunkBytes;
          const uint64_t end =
              std::min(offset, kMaxBlobLength) + std::min<uint64_t>(length, kMaxChunkBytes);
          if (blob_end && blob_end->first != blob) {
            write.Put(keys::BlobEnd(blob_end->first), EncodeBlobEnd(blob_end->second));
            blob_end.reset();
          }
          if (!blob_end) {
            blob_end.emplace(blob, 0);
            ++blobs;
          }
          blob_end->second = std::max(blob_end->second, end);
          return true;
        }));
    if (!write.ops.empty()) UPFS_RETURN_IF_ERROR(kv.Commit(write, /*sync=*/false));
    write.ops.clear();
  }
  if (blob_end) write.Put(keys::BlobEnd(blob_end->first), EncodeBlobEnd(blob_end->second));
  if (!write.ops.empty()) UPFS_RETURN_IF_ERROR(kv.Commit(write, /*sync=*/false));
  return blobs;
}

// Upgrades a store of format 3 to 6 in place (records.h: what each
// lacked), ending with the new format record, synced: until it is written,
// the next open takes up the upgrade again.
Status Upgrade(Kv& kv, const std::string& format) {
  UPFS_ASSIGN_OR_RETURN(uint64_t moved, MoveExtentRecords(kv));
  uint64_t blobs = 0;
  if (format == keys::kFormatWithoutBlobEnds) {
    UPFS_ASSIGN_OR_RETURN(blobs, AddBlobEnds(kv));
  }
  KvWrite write;
  write.Put(std::string(keys::kFormatKey), std::string(keys::kFormatValue));
  UPFS_RETURN_IF_ERROR(kv.Commit(write, /*sync=*/true));
  spdlog::info(
      "store format '{}' upgraded to '{}': {} extent records moved, end records written for {} "
      "blobs",
      format, keys::kFormatValue, moved, blobs);
  return Status::OK();
}

// Checks `write`'s conditions against `kv` and drops them: Stale when one
// does not hold. For a Kv that does not check them itself; the caller
// keeps every other writer out until the commit.
Status CheckExpected(const Kv& kv, KvWrite* write) {
  for (const auto& [key, value] : write->expects) {
    std::string now;
    Status got = kv.Get(key, &now);
    if (!got.ok() && !got.IsNotFound()) return got;
    if (got.ok() ? value != now : value.has_value())
      return Status::Stale("record changed meanwhile");
  }
  write->expects.clear();
  return Status::OK();
}

}  // namespace

KvStore::KvStore(std::unique_ptr<Kv> kv, std::unique_ptr<BlobFiles> blobs, uint64_t next_id,
                 std::shared_ptr<MountLease> lease)
    : kv_(std::move(kv)),
      blobs_(std::move(blobs)),
      next_id_(next_id),
      lease_(std::move(lease)),
      mount_id_(lease_ ? lease_->Id() : ""),
      reclaimer_([this] { ReclaimLoop(); }) {}

KvStore::~KvStore() {
  {
    MutexLock lock(freed_mu_);
    stopping_ = true;
  }
  freed_cv_.SignalAll();
  reclaimer_.join();
  // The current pack, if no chunk is in it.
  uint64_t pack;
  {
    MutexLock lock(pack_mu_);
    pack = std::exchange(pack_, 0);
  }
  if (pack != 0) DropPackIfEmpty(pack);
  if (!in_use_) return;
  // A clean stop: every byte received is durable, and the records of
  // bytes lost since they were acknowledged are gone; then the mark goes.
  Status st = blobs_->Sync();
  for (uint64_t blob : blobs_->BlobsWithLost()) {
    if (Status dropped = DropLostBytes(blob, nullptr); !dropped.ok() && st.ok())
      st = std::move(dropped);
  }
  if (st.ok()) {
    KvWrite write;
    write.Delete(lease_ ? keys::InUse(mount_id_) : std::string(keys::kInUseKey));
    st = kv_->Commit(write, /*sync=*/true);
  }
  if (!st.ok()) {
    spdlog::error(
        "closing the store uncleanly ({}): the next start checks the open sessions' bytes",
        st.ToString());
  }
}

void KvStore::ReclaimLoop() {
  MutexLock lock(freed_mu_);
  for (;;) {
    while (!stopping_ && freed_records_ < kCompactAfterFreedRecords) freed_cv_.Wait(freed_mu_);
    if (stopping_) return;
    lock.Unlock();
    // A failed compaction only delays reclaiming (and a failed database
    // is reopened by the next write).
    if (Status st = Compact(); !st.ok())
      spdlog::warn("compacting deleted extent records failed: {}", st.ToString());
    lock.Lock();
  }
}

Result<std::unique_ptr<KvStore>> KvStore::Open(std::unique_ptr<Kv> kv,
                                               std::unique_ptr<BlobFiles> blobs, bool create,
                                               std::shared_ptr<MountLease> lease) {
  std::string format;
  Status s = kv->Get(keys::kFormatKey, &format);
  if (s.IsNotFound()) {
    if (!create) return Status::InvalidArgument("not a upfs store (no format record)");
    KvWrite write;
    write.Put(std::string(keys::kFormatKey), std::string(keys::kFormatValue));
    write.Put(std::string(keys::kNextIdKey), EncodeLength(kFirstId));
    UPFS_RETURN_IF_ERROR(kv->Commit(write, /*sync=*/true));
    format = keys::kFormatValue;
  } else if (!s.ok()) {
    return s;
  }
  if (format == keys::kFormatWithoutBlobEnds || format == keys::kFormatWithoutInline ||
      format == keys::kFormatExtentsAmongRecords || format == keys::kFormatWithoutPacks) {
    UPFS_RETURN_IF_ERROR(Upgrade(*kv, format));
    format = keys::kFormatValue;
  }
  if (format != keys::kFormatValue) {
    // Format 1 had no chunk checksums; format 2 kept the bytes in the Kv.
    // There is no in-place upgrade from those.
    return Status::InvalidArgument("store format is '" + format + "', this upfs reads '" +
                                   std::string(keys::kFormatValue) +
                                   "' only; copy the assets out with the upfs that wrote the store "
                                   "and upload them into a new store");
  }
  std::string next;
  s = kv->Get(keys::kNextIdKey, &next);
  if (!s.ok() || next.size() != 8) {
    return Status::Corruption("store has no valid next-id record");
  }
  uint64_t next_id = std::max(kFirstId, keys::ReadBigEndian64(next));
  // A shared store's mounts reserve their ids in blocks (NewIds).
  if (lease) next_id = 0;
  return std::unique_ptr<KvStore>(
      new KvStore(std::move(kv), std::move(blobs), next_id, std::move(lease)));
}

Result<uint64_t> KvStore::DropUnsurvivedChunks(uint64_t session_id,
                                               const std::string& session_name) {
  uint64_t dropped = 0;
  std::vector<NodeRecord> nodes;
  UPFS_RETURN_IF_ERROR(ListNodes(session_id, &nodes));
  for (const NodeRecord& node : nodes) {
    if (node.is_dir) continue;
    std::vector<ChunkRef> chunks;  // dropping some leaves the end record true
    UPFS_RETURN_IF_ERROR(OverlappingChunks(*kv_, node.id, 0, kMaxBlobLength, &chunks));
    KvWrite write;
    std::vector<PackedRange> unpacked;
    std::string data;
    for (const ChunkRef& c : chunks) {
      Status st = ReadChunk(*blobs_, node.id, c, &data);
      if (st.ok()) continue;
      if (!st.IsCorruption()) return st;
      spdlog::warn(
          "session '{}', file '{}': bytes [{}, {}) did not survive the crash and are dropped; "
          ".status lists them as missing ({})",
          session_name, node.name, c.begin, c.end(), st.message());
      write.Delete(keys::Extent(node.id, c.begin));
      if (c.packed) AddUnpack(c, &write, &unpacked);
    }
    if (write.ops.empty()) continue;
    UPFS_RETURN_IF_ERROR(kv_->Commit(write, /*sync=*/false));
    FreePacked(unpacked);
    dropped += write.ops.size();
  }
  return dropped;
}

Result<uint64_t> KvStore::BeginUse() {
  std::string ignored;
  // The mark of a process that served the store alone (on a shared store:
  // one of an older upfs).
  Status mark = kv_->Get(keys::kInUseKey, &ignored);
  if (!mark.ok() && !mark.IsNotFound()) return mark;
  uint64_t dropped = 0;
  if (mark.ok()) {
    spdlog::warn("the store was not closed cleanly: checking the bytes of every open session");
    std::vector<SessionRecord> sessions;
    UPFS_RETURN_IF_ERROR(ListSessions(&sessions));
    for (const SessionRecord& session : sessions) {
      UPFS_ASSIGN_OR_RETURN(uint64_t n, DropUnsurvivedChunks(session.id, session.name));
      dropped += n;
    }
  }
  // Pack pages whose chunks' records went before a crash, then packs no
  // chunk is left in (their last chunks went while the process stopped,
  // or just now).
  if (UsesPacks()) UPFS_RETURN_IF_ERROR(FreePendingPacked());
  UPFS_RETURN_IF_ERROR(DropEmptyPacks());
  KvWrite write;
  if (lease_) {
    // Other mounts look up who this is; a mount that stopped uncleanly
    // leaves it, and whoever takes its sessions over checks their bytes.
    if (mark.ok()) write.Delete(std::string(keys::kInUseKey));
    write.Put(keys::InUse(mount_id_), lease_->Description());
  } else {
    write.Put(std::string(keys::kInUseKey), "1");
  }
  UPFS_RETURN_IF_ERROR(kv_->Commit(write, /*sync=*/true));
  in_use_ = true;
  if (lease_) {
    if (Status st = ForgetStoppedMounts(); !st.ok())
      spdlog::warn("forgetting stopped mounts: {}", st.ToString());
  }
  return dropped;
}

Result<uint64_t> KvStore::NewIds(uint64_t count) {
  if (!lease_) return next_id_.fetch_add(count);
  MutexLock lock(ids_mu_);
  const uint64_t first = next_id_.load();
  if (first + count <= ids_end_) {
    next_id_ = first + count;
    return first;
  }
  // A new block: the counter moves past it with a check that no other
  // mount moved it meanwhile.
  const uint64_t want = std::max(count, kIdBlock);
  for (int attempt = 0;; ++attempt) {
    std::string next;
    UPFS_RETURN_IF_ERROR(kv_->Get(keys::kNextIdKey, &next));
    if (next.size() != 8) return Status::Corruption("the store's next-id record is not 8 bytes");
    const uint64_t begin = std::max(kFirstId, keys::ReadBigEndian64(next));
    KvWrite write;
    write.Expect(std::string(keys::kNextIdKey), next);
    write.Put(std::string(keys::kNextIdKey), EncodeLength(begin + want));
    Status st = kv_->Commit(write, /*sync=*/true);
    if (st.IsStale() && attempt < 100) continue;
    UPFS_RETURN_IF_ERROR(st.WithContext("reserving ids"));
    next_id_ = begin + count;
    ids_end_ = begin + want;
    return begin;
  }
}

Status KvStore::ForgetStoppedMounts() {
  const std::string marks_prefix = keys::InUse("");
  std::map<std::string, std::string> marks;  // id -> description
  UPFS_RETURN_IF_ERROR(kv_->Scan(marks_prefix, keys::PrefixEnd(marks_prefix),
                                 [&](std::string_view key, std::string_view value) {
                                   if (key.size() > marks_prefix.size())
                                     marks.emplace(key.substr(marks_prefix.size()), value);
                                   return true;
                                 }));
  marks.erase(mount_id_);
  if (marks.empty()) return Status::OK();
  UPFS_ASSIGN_OR_RETURN(auto live, lease_->LiveIds());
  std::set<std::string> holding;
  const std::string holders_prefix = keys::HolderPrefix();
  UPFS_RETURN_IF_ERROR(kv_->Scan(holders_prefix, keys::PrefixEnd(holders_prefix),
                                 [&](std::string_view, std::string_view value) {
                                   holding.emplace(value);
                                   return true;
                                 }));
  KvWrite write;
  for (const auto& [id, description] : marks) {
    if (live.count(id) || holding.count(id)) continue;
    // A mount that stopped uncleanly and holds nothing: once it is fenced
    // (it may only be paused), its mark has nothing left to tell.
    if (Status st = lease_->Fence(description); !st.ok()) {
      spdlog::warn(
          "mount '{}' stopped without closing the store; fencing it failed ({}), its record stays",
          description, st.ToString());
      continue;
    }
    write.Delete(keys::InUse(id));
  }
  if (write.ops.empty()) return Status::OK();
  return kv_->Commit(write, /*sync=*/false);
}

std::string KvStore::DescribeMount(const std::string& id) const {
  std::string description;
  if (kv_->Get(keys::InUse(id), &description).ok()) return "'" + description + "'";
  return "mount " + id + " (stopped)";
}

Status KvStore::GetHolder(uint64_t session_id, std::string* holder) const {
  holder->clear();
  if (!lease_) return Status::OK();
  Status st = kv_->Get(keys::Holder(session_id), holder);
  return st.IsNotFound() ? Status::OK() : st;
}

Status KvStore::TakeOver(uint64_t session_id, const std::string& from) {
  if (!lease_ || from == mount_id_) return Status::OK();
  if (!from.empty()) {
    UPFS_ASSIGN_OR_RETURN(auto live, lease_->LiveIds());
    if (live.count(from))
      return Status::Busy("held by mount " + DescribeMount(from) + ", whose lease is live");
    std::string description;
    Status unclean = kv_->Get(keys::InUse(from), &description);
    if (!unclean.ok() && !unclean.IsNotFound()) return unclean;
    if (unclean.ok()) {
      // It stopped without closing the store (or stalled): make sure it
      // writes nothing more, complete what it left halfway, and drop the
      // records of bytes that its crash lost.
      UPFS_RETURN_IF_ERROR(lease_->Fence(description));
      UPFS_RETURN_IF_ERROR(kv_->RecoverStoppedWriters());
      UPFS_RETURN_IF_ERROR(
          DropUnsurvivedChunks(session_id, "id " + std::to_string(session_id)).status());
    }
  }
  Batch claim;
  claim.Claim(session_id, from);
  UPFS_RETURN_IF_ERROR(Apply(claim, /*sync=*/true));
  if (!from.empty()) {
    if (Status st = ForgetStoppedMounts(); !st.ok())
      spdlog::warn("forgetting stopped mounts: {}", st.ToString());
  }
  return Status::OK();
}

std::unique_ptr<ByteSink> KvStore::OpenBlob(uint64_t blob) {
  return std::make_unique<KvBlob>(this, blob, Holes::kZeros);
}

std::unique_ptr<ByteSink> KvStore::OpenCommittedBlob(uint64_t blob) {
  return std::make_unique<KvBlob>(this, blob, Holes::kCorruption);
}

Status KvStore::WriteToPack(std::string_view data, PackedAt* at) {
  for (;;) {
    {
      MutexLock lock(pack_mu_);
      if (pack_ != 0 && pack_end_ + data.size() <= kPackBytes) {
        *at = {pack_, pack_end_};
        pack_end_ = RoundUpToPack(pack_end_ + data.size());
        ++pack_writers_[pack_];
        break;
      }
    }
    MutexLock rotate(pack_rotate_mu_);
    {
      MutexLock lock(pack_mu_);
      if (pack_ != 0 && pack_end_ + data.size() <= kPackBytes) continue;  // another made one
    }
    // A new pack: its record (and the next id past it) before any chunk
    // names it.
    UPFS_ASSIGN_OR_RETURN(uint64_t id, NewIds(1));
    KvWrite write;
    write.Put(keys::Pack(id), "");
    {
      MutexLock apply(apply_mu_);
      PutNextId(&write);
      UPFS_RETURN_IF_ERROR(kv_->Commit(write, /*sync=*/false));
    }
    uint64_t old;
    {
      MutexLock lock(pack_mu_);
      old = std::exchange(pack_, id);
      pack_end_ = 0;
    }
    if (old != 0) DropPackIfEmpty(old);
  }
  Status st = blobs_->WritePack(at->pack, at->offset, data);
  if (!st.ok()) {
    ReleasePack(at->pack);
    FreePacked({{at->pack, at->offset, RoundUpToPack(data.size())}}, /*recorded=*/false);
  }
  return st;
}

void KvStore::ReleasePack(uint64_t pack) {
  bool last = false;
  {
    MutexLock lock(pack_mu_);
    if (auto it = pack_writers_.find(pack); it != pack_writers_.end() && --it->second == 0) {
      pack_writers_.erase(it);
      last = pack != pack_;
    }
  }
  // An older pack's last writer (whose write may have failed and freed
  // its bytes) may leave it empty.
  if (last) DropPackIfEmpty(pack);
}

void KvStore::FreePacked(const std::vector<PackedRange>& ranges, bool recorded) {
  if (ranges.empty() || (recorded && skip_pack_frees_for_test_)) return;
  std::set<uint64_t> packs;
  KvWrite done;
  for (const PackedRange& r : ranges) {
    if (Status st = blobs_->Punch(r.pack, r.offset, r.length); !st.ok()) {
      spdlog::warn("pack {}: freeing [{}, {}) failed (tried again at the next start): {}", r.pack,
                   r.offset, r.offset + r.length, st.ToString());
      continue;
    }
    if (recorded) done.Delete(keys::PendingFree(r.pack, r.offset));
    packs.insert(r.pack);
  }
  if (!done.empty()) {
    if (Status st = kv_->Commit(done, /*sync=*/false); !st.ok())
      spdlog::warn("removing the records of freed pack pages failed: {}", st.ToString());
  }
  for (uint64_t pack : packs) DropPackIfEmpty(pack);
}

Status KvStore::FreePendingPacked() {
  std::vector<PackedRange> ranges;
  UPFS_RETURN_IF_ERROR(kv_->Scan(keys::PendingFreePrefix(),
                                 keys::PrefixEnd(keys::PendingFreePrefix()),
                                 [&](std::string_view k, std::string_view v) {
                                   PackedRange r;
                                   if (keys::ParsePair(k, &r.pack, &r.offset) && v.size() == 8) {
                                     r.length = keys::ReadBigEndian64(v);
                                     ranges.push_back(r);
                                   }
                                   return true;
                                 }));
  if (!ranges.empty()) {
    spdlog::info("freeing {} ranges of packs whose records a crash removed first", ranges.size());
  }
  FreePacked(ranges);
  return Status::OK();
}

void KvStore::DropPackIfEmpty(uint64_t pack) {
  {
    MutexLock lock(pack_mu_);
    if (pack == pack_ || pack_writers_.count(pack) != 0) return;
  }
  // No chunk can go to it any more: once it holds no bytes, none names it.
  Result<uint64_t> bytes = blobs_->StoredBytes(pack);
  if (!bytes.ok() || *bytes != 0) return;
  // The file first: a record without its file is dropped at the next
  // start (DropEmptyPacks).
  Status st = blobs_->Truncate(pack, 0, kPackBytes);
  if (st.ok()) {
    KvWrite write;
    write.Delete(keys::Pack(pack));
    st = kv_->Commit(write, /*sync=*/false);
  }
  if (!st.ok()) {
    spdlog::warn("pack {}: removing it, empty, failed: {}", pack, st.ToString());
    return;
  }
  MutexLock lock(pack_mu_);
  lost_packs_.erase(pack);
}

Status KvStore::DropEmptyPacks() {
  if (!UsesPacks()) return Status::OK();
  std::vector<uint64_t> packs;
  UPFS_RETURN_IF_ERROR(kv_->Scan(keys::PackPrefix(), keys::PrefixEnd(keys::PackPrefix()),
                                 [&](std::string_view k, std::string_view) {
                                   uint64_t id = 0;
                                   if (keys::ParseNumbered(k, &id)) packs.push_back(id);
                                   return true;
                                 }));
  for (uint64_t pack : packs) DropPackIfEmpty(pack);
  return Status::OK();
}

Status KvStore::TakeLostPacks() {
  std::vector<uint64_t> lost;
  for (uint64_t blob : blobs_->BlobsWithLost()) {
    std::string ignored;
    Status got = kv_->Get(keys::Pack(blob), &ignored);
    if (got.IsNotFound()) continue;
    UPFS_RETURN_IF_ERROR(got);
    blobs_->TakeLost(blob);
    lost.push_back(blob);
  }
  if (lost.empty()) return Status::OK();
  MutexLock lock(pack_mu_);
  for (uint64_t pack : lost) {
    spdlog::error("pack {}: bytes written to it were lost; the files with chunks in it lose them",
                  pack);
    lost_packs_.insert(pack);
    if (pack == pack_) pack_ = 0;  // the next small write starts a new one
  }
  return Status::OK();
}

Status KvStore::DropLostBytes(uint64_t blob, std::string* lost_range) {
  std::vector<Extent> lost = blobs_->TakeLost(blob);
  bool packs_lost;
  {
    MutexLock lock(pack_mu_);
    packs_lost = !lost_packs_.empty();
  }
  if (lost.empty() && !packs_lost) return Status::OK();
  std::unique_lock lock(BlobLock(blob));
  if (packs_lost) {
    // The blob's chunks in packs that lost bytes go with them.
    std::vector<ChunkRef> chunks;
    UPFS_RETURN_IF_ERROR(OverlappingChunks(*kv_, blob, 0, kMaxBlobLength, &chunks));
    MutexLock packs(pack_mu_);
    for (const ChunkRef& c : chunks) {
      if (c.packed && lost_packs_.count(c.packed->pack) != 0) lost.push_back({c.begin, c.end()});
    }
  }
  if (lost.empty()) return Status::OK();
  KvWrite write;
  std::vector<PackedRange> unpacked;
  uint64_t freed = 0, stored_end = 0;
  std::optional<uint64_t> bound;
  Status st;
  for (const Extent& e : lost) {
    st = AddPunch(*kv_, *blobs_, blob, e.begin, e.end, &write, &freed, &unpacked, &stored_end,
                  &bound);
    if (!st.ok()) break;
  }
  if (st.ok()) st = kv_->Commit(write, /*sync=*/true);
  if (st.ok()) FreePacked(unpacked);
  const std::string range =
      "[" + std::to_string(lost[0].begin) + ", " + std::to_string(lost[0].end) + ")";
  if (!st.ok()) {
    // The records stay, naming bytes that are not there; the next commit
    // of the blob's file tries again.
    spdlog::error(
        "{}: bytes {} were lost after they were acknowledged, and dropping their records failed: "
        "{}",
        BlobText(blob), range, st.ToString());
    blobs_->RestoreLost(blob, std::move(lost));
    return st.WithContext(BlobText(blob) + ": dropping the records of lost bytes " + range);
  }
  spdlog::error(
      "{}: bytes {}{} were lost after they were acknowledged; they now read as never written",
      BlobText(blob), range,
      lost.size() > 1 ? " (and " + std::to_string(lost.size() - 1) + " more ranges)" : "");
  if (lost_range) *lost_range = range;
  return Status::OK();
}

Status KvStore::FlushBlob(uint64_t blob) {
  std::string range;
  Status st = DropLostBytes(blob, &range);
  if (st.ok() && !range.empty()) {
    st = Status::IOError(BlobText(blob) + ": bytes " + range +
                         " were lost after they were acknowledged; send them again");
  }
  // Records that went out in the background and failed are simply not
  // there: their bytes read as never written.
  if (Status records = kv_->TakeWriteFailure(keys::BlobEnd(blob)); !records.ok()) {
    spdlog::error("{}: records of acknowledged writes were lost: {}", BlobText(blob),
                  records.ToString());
    if (st.ok()) {
      st = records.WithContext(BlobText(blob) +
                               ": records of writes acknowledged earlier were lost (send what "
                               ".status lists as missing again)");
    }
  }
  return st;
}

Status KvStore::Apply(const Batch& batch, bool sync) {
  // Bytes before the records that may name them (a commit's entries), and
  // none that were lost since they were acknowledged.
  if (sync) {
    Status synced = blobs_->Sync();
    if (Status packs = TakeLostPacks(); !packs.ok() && synced.ok()) synced = std::move(packs);
    Status lost;
    for (const Batch::Op& op : batch.ops()) {
      const auto* pe = std::get_if<Batch::PutAssetEntry>(&op);
      if (pe == nullptr || pe->entry.is_dir) continue;
      if (Status st = FlushBlob(pe->entry.id); !st.ok() && lost.ok()) lost = std::move(st);
    }
    UPFS_RETURN_IF_ERROR(lost);
    UPFS_RETURN_IF_ERROR(synced);
  }
  std::vector<uint64_t> freed_blobs;
  uint64_t freed = 0;
  UPFS_RETURN_IF_ERROR(ApplyLocked(batch, sync, &freed_blobs, &freed));
  if (freed_blobs.empty()) return Status::OK();
  bool wake;
  {
    MutexLock lock(freed_mu_);
    freed_blobs_.insert(freed_blobs.begin(), freed_blobs.end());
    freed_records_ += freed;
    wake = freed_records_ >= kCompactAfterFreedRecords;
  }
  // In the background: callers (unlink, truncate) may hold session locks.
  if (wake) freed_cv_.Signal();
  return Status::OK();
}

void KvStore::PutNextId(KvWrite* write) const {
  if (!lease_) write->Put(std::string(keys::kNextIdKey), EncodeLength(next_id_.load()));
}

Status KvStore::ApplyLocked(const Batch& batch, bool sync, std::vector<uint64_t>* freed_blobs,
                            uint64_t* freed) {
  MutexLock lock(apply_mu_);
  // What a Truncate or DeleteBlob op trims: {blob, length}; a delete is a
  // trim to 0.
  auto trim_of = [](const Batch::Op& op) -> std::optional<std::pair<uint64_t, uint64_t>> {
    if (auto* t = std::get_if<Batch::TruncateBlob>(&op)) return std::pair{t->blob, t->length};
    if (auto* d = std::get_if<Batch::DeleteBlob>(&op)) return std::pair{d->blob, uint64_t{0}};
    return std::nullopt;
  };
  // The blobs this batch trims are locked (in lock order) until their
  // bytes are freed, so no read sees records and bytes disagree.
  std::set<size_t> lock_indexes;
  for (const Batch::Op& op : batch.ops()) {
    if (auto trim = trim_of(op)) lock_indexes.insert(trim->first % kBlobLocks);
  }
  std::vector<std::unique_lock<std::shared_mutex>> blob_locks;
  for (size_t i : lock_indexes) blob_locks.emplace_back(blob_locks_[i]);

  struct Trim {
    uint64_t blob, length, end;
  };
  std::vector<Trim> trims;
  std::vector<PackedRange> unpacked;
  KvWrite write;
  // On a shared store, every change to a session's records is made only
  // if this mount still holds it; `held` lists those checked already.
  std::set<uint64_t> held;
  bool claims = false;
  bool removes_asset = false;
  // Files of removed assets freed here: the only files with reader records.
  std::set<uint64_t> forgotten;
  auto holds = [&](uint64_t session_id) {
    if (lease_ && held.insert(session_id).second) write.Expect(keys::Holder(session_id), mount_id_);
  };
  for (const Batch::Op& op : batch.ops()) {
    if (auto* p = std::get_if<Batch::PutSession>(&op)) {
      if (p->create) {
        write.Expect(keys::Session(p->record.name), std::nullopt);
        write.Expect(keys::Asset(p->record.name), std::nullopt);
        if (lease_) {
          held.insert(p->record.id);
          write.Put(keys::Holder(p->record.id), mount_id_);
        }
      } else {
        holds(p->record.id);
      }
      write.Put(keys::Session(p->record.name), EncodeSession(p->record));
    } else if (auto* d = std::get_if<Batch::DeleteSession>(&op)) {
      holds(d->id);
      write.Delete(keys::Session(d->name));
      if (lease_) write.Delete(keys::Holder(d->id));
    } else if (auto* c = std::get_if<Batch::ClaimSession>(&op)) {
      claims = true;
      held.insert(c->session_id);
      write.Expect(keys::Holder(c->session_id),
                   c->from.empty() ? std::nullopt : std::optional(c->from));
      write.Put(keys::Holder(c->session_id), mount_id_);
    } else if (auto* pn = std::get_if<Batch::PutNode>(&op)) {
      holds(pn->session_id);
      write.Put(keys::Node(pn->session_id, pn->record.id), EncodeNode(pn->record));
    } else if (auto* dn = std::get_if<Batch::DeleteNode>(&op)) {
      holds(dn->session_id);
      write.Delete(keys::Node(dn->session_id, dn->node_id));
    } else if (auto* pa = std::get_if<Batch::PutAsset>(&op)) {
      write.Put(keys::Asset(pa->record.name), EncodeAsset(pa->record));
      write.Put(keys::Id(pa->record.root_id), EncodeLocation({pa->record.name, "", ""}));
    } else if (auto* pe = std::get_if<Batch::PutAssetEntry>(&op)) {
      const AssetEntry& e = pe->entry;
      write.Put(keys::Entry(e.asset, e.dir, e.name), EncodeEntry(e));
      write.Put(keys::Id(e.id), EncodeLocation({e.asset, e.dir, e.name}));
    } else if (auto* pnote = std::get_if<Batch::PutNotice>(&op)) {
      write.Put(keys::Notice(pnote->asset), mount_id_);
    } else if (auto* dn = std::get_if<Batch::DeleteNotice>(&op)) {
      write.Delete(keys::Notice(dn->asset));
    } else if (auto* da = std::get_if<Batch::DeleteAsset>(&op)) {
      removes_asset = true;
      // The record as stored (an older format's bytes differ from a new
      // encoding of the same record): removed only if still that.
      std::string stored;
      Status got = kv_->Get(keys::Asset(da->record.name), &stored);
      if (got.IsNotFound())
        return Status::NotFound("asset '" + da->record.name + "' is not committed");
      UPFS_RETURN_IF_ERROR(got);
      write.Expect(keys::Asset(da->record.name), std::move(stored));
      write.Delete(keys::Asset(da->record.name));
      write.Delete(keys::Id(da->record.root_id));
      write.Delete(keys::Notice(da->record.name));
    } else if (auto* de = std::get_if<Batch::DeleteAssetEntry>(&op)) {
      write.Delete(keys::Entry(de->entry.asset, de->entry.dir, de->entry.name));
      write.Delete(keys::Id(de->entry.id));
    } else if (auto* pr = std::get_if<Batch::PutRemoved>(&op)) {
      write.Put(keys::Removed(pr->blob), mount_id_);
    } else if (auto* dr = std::get_if<Batch::DeleteRemoved>(&op)) {
      write.Delete(keys::Removed(dr->blob));
      forgotten.insert(dr->blob);
    } else if (auto trim = trim_of(op)) {
      const auto [blob, length] = *trim;
      uint64_t before = *freed, end = 0;
      UPFS_RETURN_IF_ERROR(
          AddTruncate(*kv_, *blobs_, blob, length, &write, freed, &unpacked, &end));
      if (*freed > before) freed_blobs->push_back(blob);
      // A delete removes the first file even when no record named bytes
      // in it (bytes a crash left without records).
      trims.push_back({blob, length, length == 0 ? std::max<uint64_t>(end, 1) : end});
    }
  }
  // A blob deleted whole is recorded as "removed" with its records' end,
  // and that record is dropped once its bytes are freed (below): a crash
  // in between leaves no bytes without an owner, and the next start
  // (Engine::Open) frees them.
  for (const Trim& t : trims) {
    if (t.length != 0) continue;
    write.Put(keys::Removed(t.blob), mount_id_);
    // Reader records of a removed asset's file freed whole (those of
    // mounts that died with it open: the others took theirs back) go with
    // it. A session's file never has any, so its deletion reads none.
    if (lease_ && forgotten.count(t.blob) != 0) {
      const std::string prefix = keys::ReaderPrefix(t.blob);
      UPFS_RETURN_IF_ERROR(
          kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view k, std::string_view) {
            write.Delete(std::string(k));
            return true;
          }));
    }
  }
  PutNextId(&write);
  Status committed;
  if (!kv_->SharedByProcesses()) {
    // This process is the only writer of these records, and holds
    // apply_mu_: the conditions cannot change before the commit.
    committed = CheckExpected(*kv_, &write);
  }
  if (committed.ok()) committed = kv_->Commit(write, sync);
  if (!committed.ok()) {
    if (!committed.IsStale()) return committed;
    if (removes_asset) return Status::NotFound("the asset was removed or replaced meanwhile");
    for (const Batch::Op& op : batch.ops()) {
      if (auto* p = std::get_if<Batch::PutSession>(&op); p != nullptr && p->create) {
        return Status::Exists("the name '" + p->record.name +
                              "' is taken by an open session or an asset");
      }
    }
    return Status::Busy(std::string(
        claims ? "another mount took the session over first"
               : "this mount no longer holds the session (another mount took it over)"));
  }
  // The records are gone; now their bytes. A failure here leaves bytes no
  // record names (invisible; fsck lists them as orphans), or, for a blob
  // deleted whole, under its "removed" record, freed at the next start.
  FreePacked(unpacked);
  KvWrite freed_whole;
  for (const Trim& t : trims) {
    if (Status st = blobs_->Truncate(t.blob, t.length, t.end); !st.ok()) {
      spdlog::warn("{}: freeing bytes from {} failed: {}", BlobText(t.blob), t.length,
                   st.ToString());
    } else if (t.length == 0) {
      freed_whole.Delete(keys::Removed(t.blob));
    }
  }
  if (!freed_whole.empty()) {
    if (Status st = kv_->Commit(freed_whole, /*sync=*/false); !st.ok()) {
      spdlog::warn("dropping the records of {} freed blobs failed (done at the next start): {}",
                   trims.size(), st.ToString());
    }
  }
  return Status::OK();
}

Status KvStore::GetSession(std::string_view name, SessionRecord* out) const {
  std::string value;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Session(name), &value));
  return DecodeSession(value, out);
}

namespace {

// Decodes every record under `prefix` into `out`, stopping at the first
// that does not decode (its Status is returned).
template <typename Record>
Status ScanRecords(const Kv& kv, const std::string& prefix,
                   Status (*decode)(std::string_view, Record*), std::vector<Record>* out) {
  out->clear();
  Status decoded;
  UPFS_RETURN_IF_ERROR(
      kv.Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view, std::string_view v) {
        Record r;
        decoded = decode(v, &r);
        if (!decoded.ok()) return false;
        out->push_back(std::move(r));
        return true;
      }));
  return decoded;
}

}  // namespace

Status KvStore::ListSessions(std::vector<SessionRecord>* out) const {
  return ScanRecords(*kv_, keys::SessionPrefix(), DecodeSession, out);
}

Status KvStore::ListNodes(uint64_t session_id, std::vector<NodeRecord>* out) const {
  return ScanRecords(*kv_, keys::NodePrefix(session_id), DecodeNode, out)
      .WithContext("session " + std::to_string(session_id));
}

Status KvStore::GetAsset(std::string_view name, AssetRecord* out) const {
  std::string v;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Asset(name), &v));
  return DecodeAsset(v, out).WithContext("asset '" + std::string(name) + "'");
}

Status KvStore::ListAssets(std::vector<AssetRecord>* out) const {
  return ScanRecords(*kv_, keys::AssetPrefix(), DecodeAsset, out);
}

Status KvStore::ListNotices(std::vector<std::string>* out) const {
  out->clear();
  std::string prefix = keys::NoticePrefix();
  return kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view k, std::string_view) {
    out->emplace_back(k.substr(prefix.size()));
    return true;
  });
}

Status KvStore::ListAssetEntries(std::string_view asset, std::vector<AssetEntry>* out) const {
  return ScanRecords(*kv_, keys::EntryAssetPrefix(asset), DecodeEntry, out)
      .WithContext("asset '" + std::string(asset) + "'");
}

Status KvStore::ListRemovedBlobs(std::vector<uint64_t>* out) const {
  out->clear();
  std::vector<uint64_t> removed;
  std::string prefix = keys::RemovedPrefix();
  UPFS_RETURN_IF_ERROR(
      kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view k, std::string_view) {
        if (uint64_t blob = 0; keys::ParseNumbered(k, &blob)) removed.push_back(blob);
        return true;
      }));
  return Unread(removed, out);
}

Status KvStore::CommitIfUnchanged(KvWrite write) {
  if (kv_->SharedByProcesses()) return kv_->Commit(write, /*sync=*/false);
  // A Kv that checks no conditions (tests): checked here.
  MutexLock lock(apply_mu_);
  UPFS_RETURN_IF_ERROR(CheckExpected(*kv_, &write));
  return kv_->Commit(write, /*sync=*/false);
}

Status KvStore::AddReader(uint64_t blob, const AssetLocation& where) {
  if (!lease_) return Status::OK();
  KvWrite write;
  write.Expect(keys::Id(blob), EncodeLocation(where));
  write.Put(keys::Reader(blob, mount_id_), "");
  Status st = CommitIfUnchanged(std::move(write));
  if (st.IsStale()) return Status::NotFound("the file was removed");
  return st;
}

Status KvStore::SetQuotaGrant(uint32_t uid, QuotaGrant need, QuotaGrant want, QuotaGrant limit,
                              QuotaGrant* granted) {
  if (!lease_) {
    *granted = want;
    return Status::OK();
  }
  const std::string key = keys::QuotaGrants(uid);
  const std::string what = "uid " + std::to_string(uid);
  std::optional<std::set<std::string>> live;
  // One record per uid, changed only if unchanged since it was read: the
  // grants of racing mounts never pass the limits together.
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::string stored;
    std::optional<std::string> before;
    if (Status got = kv_->Get(key, &stored); got.ok()) {
      before = stored;
    } else if (!got.IsNotFound()) {
      return got.WithContext("the quota grants of " + what);
    }
    std::vector<MountGrant> grants;
    if (before) UPFS_RETURN_IF_ERROR(DecodeQuotaGrants(*before, &grants));
    if (!live) {
      UPFS_ASSIGN_OR_RETURN(live, lease_->LiveIds());
      live->insert(mount_id_);
    }
    // The other live mounts' grants stay; those of mounts that are gone go.
    std::vector<MountGrant> kept;
    QuotaGrant others;
    for (MountGrant& g : grants) {
      if (g.mount == mount_id_ || live->count(g.mount) == 0) continue;
      others.bytes += g.grant.bytes;
      others.sessions += g.grant.sessions;
      kept.push_back(std::move(g));
    }
    QuotaGrant grant = want;
    auto cut = [](uint64_t* value, uint64_t limit, uint64_t taken) {
      if (limit != 0) *value = std::min(*value, limit - std::min(limit, taken));
    };
    cut(&grant.bytes, limit.bytes, others.bytes);
    cut(&grant.sessions, limit.sessions, others.sessions);
    if (grant.bytes < need.bytes || grant.sessions < need.sessions) {
      return Status::QuotaExceeded("the other mounts of this store hold grants of " +
                                   std::to_string(others.bytes) + " bytes and " +
                                   std::to_string(others.sessions) + " sessions for " + what);
    }
    if (grant.bytes != 0 || grant.sessions != 0) kept.push_back({mount_id_, grant});
    KvWrite write;
    write.Expect(key, before);
    if (kept.empty()) {
      write.Delete(key);
    } else {
      write.Put(key, EncodeQuotaGrants(kept));
    }
    Status st = CommitIfUnchanged(std::move(write));
    if (st.IsStale()) continue;  // another mount changed them first
    UPFS_RETURN_IF_ERROR(st.WithContext("writing the quota grants of " + what));
    *granted = grant;
    return Status::OK();
  }
  return Status::Busy("the quota grants of " + what + " kept changing under this mount");
}

Status KvStore::ClaimNotices(std::vector<std::string>* out) {
  return CollectNotices(out, /*taken_only=*/false);
}

Status KvStore::TakeOverNotices(std::vector<std::string>* out) {
  out->clear();
  if (!lease_) return Status::OK();  // one process: nobody else's to take
  return CollectNotices(out, /*taken_only=*/true);
}

Status KvStore::CollectNotices(std::vector<std::string>* out, bool taken_only) {
  out->clear();
  std::vector<std::pair<std::string, std::string>> notices;  // asset, its deliverer
  const std::string prefix = keys::NoticePrefix();
  UPFS_RETURN_IF_ERROR(
      kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view k, std::string_view v) {
        notices.emplace_back(std::string(k.substr(prefix.size())), std::string(v));
        return true;
      }));
  std::optional<std::set<std::string>> live;
  size_t taken = 0;
  for (auto& [asset, deliverer] : notices) {
    if (lease_ && deliverer != mount_id_) {
      if (!deliverer.empty()) {
        if (!live) {
          UPFS_ASSIGN_OR_RETURN(live, lease_->LiveIds());
        }
        if (live->count(deliverer) != 0) continue;  // that mount delivers it
      }
      // Its mount is gone (or the record predates deliverers): taken over,
      // unless another mount took it first.
      KvWrite write;
      write.Expect(keys::Notice(asset), deliverer);
      write.Put(keys::Notice(asset), mount_id_);
      Status st = CommitIfUnchanged(std::move(write));
      if (st.IsStale()) continue;
      UPFS_RETURN_IF_ERROR(st.WithContext("taking over a commit notice"));
      ++taken;
    } else if (taken_only) {
      continue;  // this mount's already (its own, or taken before)
    }
    out->push_back(std::move(asset));
  }
  if (taken > 0) {
    spdlog::info("post_commit: took over {} commit notice(s) of mounts that are gone", taken);
  }
  return Status::OK();
}

Status KvStore::DropReaders(const std::vector<uint64_t>& blobs) {
  if (!lease_ || blobs.empty()) return Status::OK();
  KvWrite write;
  for (uint64_t blob : blobs) write.Delete(keys::Reader(blob, mount_id_));
  return kv_->Commit(write, /*sync=*/false);
}

Status KvStore::Unread(const std::vector<uint64_t>& blobs, std::vector<uint64_t>* out) const {
  out->clear();
  if (!lease_) {
    *out = blobs;
    return Status::OK();
  }
  std::optional<std::set<std::string>> live;
  for (uint64_t blob : blobs) {
    std::vector<std::string> readers;
    const std::string prefix = keys::ReaderPrefix(blob);
    UPFS_RETURN_IF_ERROR(
        kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view k, std::string_view) {
          uint64_t b = 0;
          std::string_view mount;
          if (keys::ParseReader(k, &b, &mount)) readers.emplace_back(mount);
          return true;
        }));
    bool read = false;
    for (const std::string& mount : readers) {
      if (!live) {
        UPFS_ASSIGN_OR_RETURN(live, lease_->LiveIds());
      }
      read = read || live->count(mount) > 0;
    }
    if (!read) out->push_back(blob);
  }
  return Status::OK();
}

Status KvStore::GetAssetEntry(std::string_view asset, std::string_view dir, std::string_view name,
                              AssetEntry* out) const {
  std::string v;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Entry(asset, dir, name), &v));
  return DecodeEntry(v, out).WithContext("asset '" + std::string(asset) + "'");
}

Status KvStore::ListAssetDir(std::string_view asset, std::string_view dir,
                             std::vector<AssetEntry>* out) const {
  return ScanRecords(*kv_, keys::EntryDirPrefix(asset, dir), DecodeEntry, out)
      .WithContext("asset '" + std::string(asset) + "'");
}

Status KvStore::LocateId(uint64_t id, AssetLocation* out) const {
  std::string v;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Id(id), &v));
  return DecodeLocation(v, out);
}

Result<Space> KvStore::GetSpace() {
  Space space;
  UPFS_RETURN_IF_ERROR(kv_->GetSpace(&space.total_bytes, &space.free_bytes));
  return space;
}

Status KvStore::Compact() {
  MutexLock compacting(compact_mu_);
  std::set<uint64_t> blobs;
  {
    MutexLock lock(freed_mu_);
    blobs.swap(freed_blobs_);
    freed_records_ = 0;
  }
  if (blobs.empty()) return Status::OK();
  // Runs of consecutive blob ids, each compacted as one range; past
  // kMaxCompactRanges runs, one range from the first to the last (it may
  // rewrite live blobs in between, but each range costs LevelDB a memtable
  // switch).
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // [first, last + 1)
  for (uint64_t b : blobs) {
    if (!runs.empty() && runs.back().second == b) {
      runs.back().second = b + 1;
    } else {
      runs.emplace_back(b, b + 1);
    }
  }
  if (runs.size() > kMaxCompactRanges) runs = {{runs.front().first, runs.back().second}};
  Status first_error;
  for (const auto& [from, to] : runs) {
    // Kv::Compact wants both ends to be keys never used: no chunk starts
    // at offset 2^64-1, so the range from blob from-1's to blob to-1's is
    // exactly the extent records of blobs [from, to), end records included
    // (the end record of blob to-1 sorts just before that key).
    Status st =
        kv_->Compact(keys::Extent(from - 1, ~uint64_t{0}), keys::Extent(to - 1, ~uint64_t{0}));
    if (!st.ok() && first_error.ok()) first_error = st;
  }
  return first_error;
}

}  // namespace upfs::store
