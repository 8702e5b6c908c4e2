#include "store/kv_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
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

// One stored chunk: [begin, begin + length), whose bytes hash to checksum.
struct ChunkRef {
  uint64_t begin;
  uint64_t length;
  uint64_t checksum;
  uint64_t end() const { return begin + length; }
  bool operator==(const ChunkRef&) const = default;
};

Status DecodeExtent(std::string_view key, std::string_view value, ChunkRef* out) {
  if (key.size() != 17 || !DecodeExtentValue(value, &out->length, &out->checksum)) {
    return Status::Corruption("malformed extent record for " + BlobText(keys::ReadBigEndian64(key.substr(1))));
  }
  out->begin = keys::OffsetOf(key);
  return Status::OK();
}

// Chunks of `blob` that intersect [begin, end), in order, as the extent
// records list them.
Status OverlappingChunks(const Kv& kv, uint64_t blob, uint64_t begin, uint64_t end,
                         std::vector<ChunkRef>* out) {
  out->clear();
  std::string key, value;
  // The chunk starting at or before `begin` may reach into the range.
  Status s = kv.Last(keys::Extent(blob, 0), keys::Extent(blob, begin) + '\0', &key, &value);
  if (s.ok()) {
    ChunkRef c;
    UPFS_RETURN_IF_ERROR(DecodeExtent(key, value, &c));
    if (c.end() > begin) out->push_back(c);
  } else if (!s.IsNotFound()) {
    return s;
  }
  Status scan_status;
  UPFS_RETURN_IF_ERROR(kv.Scan(keys::Extent(blob, begin) + '\0', keys::Extent(blob, end),
                               [&](std::string_view k, std::string_view v) {
                                 ChunkRef c;
                                 scan_status = DecodeExtent(k, v, &c);
                                 if (!scan_status.ok()) return false;
                                 out->push_back(c);
                                 return true;
                               }));
  return scan_status;
}

// OK when `data` is what the extent record `c` of `blob` describes.
Status VerifyChunk(uint64_t blob, const ChunkRef& c, std::string_view data) {
  std::string where = BlobText(blob) + ": chunk at offset " + std::to_string(c.begin);
  if (data.size() != c.length) {
    return Status::Corruption(where + " has " + std::to_string(data.size()) + " bytes, its extent record says " +
                              std::to_string(c.length));
  }
  if (uint64_t actual = ChunkChecksum(data); actual != c.checksum) {
    return Status::Corruption(where + " (" + std::to_string(c.length) + " bytes) fails its checksum: extent record " +
                              Hex64(c.checksum) + ", bytes " + Hex64(actual));
  }
  return Status::OK();
}

Status ReadChunk(const Kv& kv, uint64_t blob, const ChunkRef& c, std::string* data) {
  Status s = kv.Get(keys::Chunk(blob, c.begin), data);
  if (s.IsNotFound()) {
    return Status::Corruption(BlobText(blob) + ": chunk at offset " + std::to_string(c.begin) +
                              " is listed but missing");
  }
  UPFS_RETURN_IF_ERROR(s);
  return VerifyChunk(blob, c, *data);
}

void PutChunk(uint64_t blob, uint64_t offset, std::string_view data, KvWrite* write) {
  write->Put(keys::Chunk(blob, offset), std::string(data));
  write->Put(keys::Extent(blob, offset), EncodeExtentValue(data.size(), ChunkChecksum(data)));
}

void DeleteChunk(uint64_t blob, uint64_t offset, KvWrite* write) {
  write->Delete(keys::Chunk(blob, offset));
  write->Delete(keys::Extent(blob, offset));
}

// Adds to `write` what removes [begin, end) from the stored chunks: chunks
// inside go, chunks straddling an edge keep their outside part. Adds the
// bytes removed to *freed.
Status AddPunch(const Kv& kv, uint64_t blob, uint64_t begin, uint64_t end, KvWrite* write, uint64_t* freed) {
  std::vector<ChunkRef> chunks;
  UPFS_RETURN_IF_ERROR(OverlappingChunks(kv, blob, begin, end, &chunks));
  for (const ChunkRef& c : chunks) {
    *freed += std::min(c.end(), end) - std::max(c.begin, begin);
    if (c.begin >= begin && c.end() <= end) {
      DeleteChunk(blob, c.begin, write);
      continue;
    }
    std::string data;
    UPFS_RETURN_IF_ERROR(ReadChunk(kv, blob, c, &data));
    if (c.begin < begin) {
      // Keep the head under the same key.
      PutChunk(blob, c.begin, std::string_view(data).substr(0, begin - c.begin), write);
    } else {
      DeleteChunk(blob, c.begin, write);
    }
    if (c.end() > end) {
      PutChunk(blob, end, std::string_view(data).substr(end - c.begin), write);
    }
  }
  return Status::OK();
}

// A read restarts when a concurrent rewrite moved the chunks it read.
constexpr int kReadAttempts = 16;

// What a read returns for bytes no chunk holds.
enum class Holes { kZeros, kCorruption };

class KvBlob : public ByteSink {
 public:
  KvBlob(Kv* kv, uint64_t blob, Holes holes) : kv_(kv), blob_(blob), holes_(holes) {}

  Status WriteAt(uint64_t offset, std::string_view data) override {
    if (data.empty()) return Status::OK();
    if (offset >= kMaxBlobLength || data.size() > kMaxBlobLength - offset) {
      return Status::TooLarge("write at offset " + std::to_string(offset) +
                              " ends beyond the largest file upfs stores");
    }
    UPFS_RETURN_IF_ERROR(kv_->CheckRoomForData(data.size()));
    uint64_t end = offset + data.size();
    KvWrite write;
    uint64_t overwritten = 0;  // not reclaimed separately: the new chunks take its place
    UPFS_RETURN_IF_ERROR(AddPunch(*kv_, blob_, offset, end, &write, &overwritten));
    for (uint64_t pos = 0; pos < data.size(); pos += kMaxChunkBytes) {
      PutChunk(blob_, offset + pos, data.substr(pos, kMaxChunkBytes), &write);
    }
    return kv_->Commit(write, /*sync=*/false);
  }

  Status ReadAt(uint64_t offset, size_t n, char* out) const override {
    if (n == 0) return Status::OK();
    if (offset >= kMaxBlobLength) {
      if (holes_ == Holes::kCorruption) return Hole(offset, offset + n);
      std::memset(out, 0, n);
      return Status::OK();
    }
    uint64_t end = offset + std::min<uint64_t>(n, kMaxBlobLength - offset);
    // List the chunks from their extent records, then read their bytes in
    // one snapshot scan, checking each against its record. The two are
    // separate snapshots: when they disagree, the extent records are read
    // again; if those changed, a concurrent rewrite moved chunks and the
    // read starts over (so it returns the old bytes or the new ones, never
    // zeros); if they did not, the stored data is corrupt.
    std::vector<ChunkRef> chunks, again;
    for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
      std::memset(out, 0, n);
      UPFS_RETURN_IF_ERROR(OverlappingChunks(*kv_, blob_, offset, end, &chunks));
      if (holes_ == Holes::kCorruption) UPFS_RETURN_IF_ERROR(CheckCoverage(chunks, offset, end));
      if (chunks.empty()) return Status::OK();
      size_t next = 0;
      Status mismatch;
      UPFS_RETURN_IF_ERROR(kv_->Scan(
          keys::Chunk(blob_, chunks.front().begin), keys::Chunk(blob_, end),
          [&](std::string_view k, std::string_view v) {
            const ChunkRef& c = chunks[next];
            uint64_t begin = keys::OffsetOf(k);
            if (begin != c.begin) {
              mismatch = Status::Corruption(BlobText(blob_) + ": chunk at offset " +
                                            std::to_string(std::min(begin, c.begin)) +
                                            (begin < c.begin ? " has no extent record" : " is listed but missing"));
              return false;
            }
            mismatch = VerifyChunk(blob_, c, v);
            if (!mismatch.ok()) return false;
            uint64_t from = std::max(begin, offset);
            uint64_t to = std::min(c.end(), end);
            std::memcpy(out + (from - offset), v.data() + (from - begin), to - from);
            // Stop at the last listed chunk: stepping on would load (and
            // checksum) a block this read never needs, failing it if that
            // block is damaged.
            return ++next < chunks.size();
          }));
      if (mismatch.ok() && next < chunks.size()) {
        mismatch = Status::Corruption(BlobText(blob_) + ": chunk at offset " + std::to_string(chunks[next].begin) +
                                      " is listed but missing");
      }
      if (mismatch.ok()) return Status::OK();
      UPFS_RETURN_IF_ERROR(OverlappingChunks(*kv_, blob_, offset, end, &again));
      if (again == chunks) return mismatch;
    }
    return Status::Busy(BlobText(blob_) + ": range at offset " + std::to_string(offset) +
                        " kept changing during the read");
  }

  Status Extents(std::vector<Extent>* out) const override {
    out->clear();
    Status decode_status;
    UPFS_RETURN_IF_ERROR(kv_->Scan(keys::Extent(blob_, 0), keys::Extent(blob_ + 1, 0),
                                   [&](std::string_view k, std::string_view v) {
                                     ChunkRef c;
                                     decode_status = DecodeExtent(k, v, &c);
                                     if (!decode_status.ok()) return false;
                                     if (!out->empty() && out->back().end == c.begin) {
                                       out->back().end = c.end();
                                     } else {
                                       out->push_back({c.begin, c.end()});
                                     }
                                     return true;
                                   }));
    return decode_status;
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
    return Status::Corruption(BlobText(blob_) + ": committed data has no chunk for bytes [" + std::to_string(begin) +
                              ", " + std::to_string(end) + ")");
  }

  Kv* const kv_;
  const uint64_t blob_;
  const Holes holes_;
};

}  // namespace

Status AddTruncate(const Kv& kv, uint64_t blob, uint64_t length, KvWrite* write, uint64_t* freed) {
  uint64_t ignored = 0;
  return AddPunch(kv, blob, length, kMaxBlobLength, write, freed ? freed : &ignored);
}

KvStore::KvStore(std::unique_ptr<Kv> kv, uint64_t next_id)
    : kv_(std::move(kv)), next_id_(next_id), reclaimer_([this] { ReclaimLoop(); }) {}

KvStore::~KvStore() {
  {
    std::lock_guard lock(freed_mu_);
    stopping_ = true;
  }
  freed_cv_.notify_all();
  reclaimer_.join();
}

void KvStore::ReclaimLoop() {
  std::unique_lock lock(freed_mu_);
  for (;;) {
    freed_cv_.wait(lock, [&] { return stopping_ || freed_bytes_ >= kCompactAfterFreedBytes; });
    if (stopping_) return;
    lock.unlock();
    // A failed compaction only delays reclaiming (and a failed database
    // is reopened by the next write).
    if (Status st = Compact(); !st.ok()) spdlog::warn("reclaiming space of deleted data failed: {}", st.ToString());
    lock.lock();
  }
}

Result<std::unique_ptr<KvStore>> KvStore::Open(std::unique_ptr<Kv> kv, bool create) {
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
  if (format != keys::kFormatValue) {
    // Stores of format 1 have no chunk checksums, and extent records of
    // another size; there is no in-place upgrade.
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
  return std::unique_ptr<KvStore>(new KvStore(std::move(kv), next_id));
}

uint64_t KvStore::NewIds(uint64_t count) { return next_id_.fetch_add(count); }

std::unique_ptr<ByteSink> KvStore::OpenBlob(uint64_t blob) {
  return std::make_unique<KvBlob>(kv_.get(), blob, Holes::kZeros);
}

std::unique_ptr<ByteSink> KvStore::OpenCommittedBlob(uint64_t blob) {
  return std::make_unique<KvBlob>(kv_.get(), blob, Holes::kCorruption);
}

Status KvStore::Apply(const Batch& batch, bool sync) {
  std::vector<uint64_t> freed_blobs;
  uint64_t freed = 0;
  UPFS_RETURN_IF_ERROR(ApplyLocked(batch, sync, &freed_blobs, &freed));
  if (freed_blobs.empty()) return Status::OK();
  bool wake;
  {
    std::lock_guard lock(freed_mu_);
    freed_blobs_.insert(freed_blobs.begin(), freed_blobs.end());
    freed_bytes_ += freed;
    wake = freed_bytes_ >= kCompactAfterFreedBytes;
  }
  // In the background: callers (unlink, truncate) may hold session locks.
  if (wake) freed_cv_.notify_one();
  return Status::OK();
}

Status KvStore::ApplyLocked(const Batch& batch, bool sync, std::vector<uint64_t>* freed_blobs, uint64_t* freed) {
  std::lock_guard lock(apply_mu_);
  KvWrite write;
  for (const Batch::Op& op : batch.ops()) {
    if (auto* p = std::get_if<Batch::PutSession>(&op)) {
      write.Put(keys::Session(p->record.name), EncodeSession(p->record));
    } else if (auto* d = std::get_if<Batch::DeleteSession>(&op)) {
      write.Delete(keys::Session(d->name));
    } else if (auto* pn = std::get_if<Batch::PutNode>(&op)) {
      write.Put(keys::Node(pn->session_id, pn->record.id), EncodeNode(pn->record));
    } else if (auto* dn = std::get_if<Batch::DeleteNode>(&op)) {
      write.Delete(keys::Node(dn->session_id, dn->node_id));
    } else if (auto* pa = std::get_if<Batch::PutAsset>(&op)) {
      write.Put(keys::Asset(pa->record.name), EncodeAsset(pa->record));
      write.Put(keys::Id(pa->record.root_id), EncodeLocation({pa->record.name, "", ""}));
    } else if (auto* pe = std::get_if<Batch::PutAssetEntry>(&op)) {
      const AssetEntry& e = pe->entry;
      write.Put(keys::Entry(e.asset, e.dir, e.name), EncodeEntry(e));
      write.Put(keys::Id(e.id), EncodeLocation({e.asset, e.dir, e.name}));
    } else if (auto* t = std::get_if<Batch::TruncateBlob>(&op)) {
      uint64_t before = *freed;
      UPFS_RETURN_IF_ERROR(AddTruncate(*kv_, t->blob, t->length, &write, freed));
      if (*freed > before) freed_blobs->push_back(t->blob);
    } else if (auto* db = std::get_if<Batch::DeleteBlob>(&op)) {
      uint64_t before = *freed;
      UPFS_RETURN_IF_ERROR(AddTruncate(*kv_, db->blob, 0, &write, freed));
      if (*freed > before) freed_blobs->push_back(db->blob);
    }
  }
  write.Put(std::string(keys::kNextIdKey), EncodeLength(next_id_.load()));
  return kv_->Commit(write, sync);
}

Status KvStore::ListSessions(std::vector<SessionRecord>* out) const {
  out->clear();
  Status decode;
  std::string prefix = keys::SessionPrefix();
  UPFS_RETURN_IF_ERROR(kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view, std::string_view v) {
    SessionRecord r;
    decode = DecodeSession(v, &r);
    if (!decode.ok()) return false;
    out->push_back(std::move(r));
    return true;
  }));
  return decode;
}

Status KvStore::ListNodes(uint64_t session_id, std::vector<NodeRecord>* out) const {
  out->clear();
  Status decode;
  std::string prefix = keys::NodePrefix(session_id);
  UPFS_RETURN_IF_ERROR(kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view, std::string_view v) {
    NodeRecord r;
    decode = DecodeNode(v, &r);
    if (!decode.ok()) return false;
    out->push_back(std::move(r));
    return true;
  }));
  return decode.WithContext("session " + std::to_string(session_id));
}

Status KvStore::GetAsset(std::string_view name, AssetRecord* out) const {
  std::string v;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Asset(name), &v));
  return DecodeAsset(v, out).WithContext("asset '" + std::string(name) + "'");
}

Status KvStore::ListAssets(std::vector<AssetRecord>* out) const {
  out->clear();
  Status decode;
  std::string prefix = keys::AssetPrefix();
  UPFS_RETURN_IF_ERROR(kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view, std::string_view v) {
    AssetRecord r;
    decode = DecodeAsset(v, &r);
    if (!decode.ok()) return false;
    out->push_back(std::move(r));
    return true;
  }));
  return decode;
}

Status KvStore::GetAssetEntry(std::string_view asset, std::string_view dir, std::string_view name,
                              AssetEntry* out) const {
  std::string v;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Entry(asset, dir, name), &v));
  return DecodeEntry(v, out).WithContext("asset '" + std::string(asset) + "'");
}

Status KvStore::ListAssetDir(std::string_view asset, std::string_view dir,
                             std::vector<AssetEntry>* out) const {
  out->clear();
  Status decode;
  std::string prefix = keys::EntryDirPrefix(asset, dir);
  UPFS_RETURN_IF_ERROR(kv_->Scan(prefix, keys::PrefixEnd(prefix), [&](std::string_view, std::string_view v) {
    AssetEntry e;
    decode = DecodeEntry(v, &e);
    if (!decode.ok()) return false;
    out->push_back(std::move(e));
    return true;
  }));
  return decode.WithContext("asset '" + std::string(asset) + "'");
}

Status KvStore::LocateId(uint64_t id, AssetLocation* out) const {
  std::string v;
  UPFS_RETURN_IF_ERROR(kv_->Get(keys::Id(id), &v));
  return DecodeLocation(v, out);
}

Status KvStore::Compact() {
  std::lock_guard compacting(compact_mu_);
  std::set<uint64_t> blobs;
  {
    std::lock_guard lock(freed_mu_);
    blobs.swap(freed_blobs_);
    freed_bytes_ = 0;
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
    for (bool chunks : {true, false}) {
      // Kv::Compact wants both ends to be keys never used: no chunk
      // starts at offset 2^64-1, so the range from blob from-1's to blob
      // to-1's is exactly the keys of blobs [from, to).
      std::string begin = chunks ? keys::Chunk(from - 1, ~uint64_t{0}) : keys::Extent(from - 1, ~uint64_t{0});
      std::string last = chunks ? keys::Chunk(to - 1, ~uint64_t{0}) : keys::Extent(to - 1, ~uint64_t{0});
      Status st = kv_->Compact(begin, last);
      if (!st.ok() && first_error.ok()) first_error = st;
    }
  }
  return first_error;
}

}  // namespace upfs::store
