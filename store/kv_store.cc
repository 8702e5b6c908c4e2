#include "store/kv_store.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

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

Status DecodeLength(std::string_view key, std::string_view value, uint64_t* n) {
  if (value.size() != 8 || key.size() != 17) {
    return Status::Corruption("malformed extent record for blob " +
                              std::to_string(keys::ReadBigEndian64(key.substr(1))));
  }
  *n = keys::ReadBigEndian64(value);
  return Status::OK();
}

// One stored chunk: [begin, begin + length).
struct ChunkRef {
  uint64_t begin;
  uint64_t length;
  uint64_t end() const { return begin + length; }
};

// Chunks of `blob` that intersect [begin, end), in order.
Status OverlappingChunks(const Kv& kv, uint64_t blob, uint64_t begin, uint64_t end,
                         std::vector<ChunkRef>* out) {
  std::string key, value;
  // The chunk starting at or before `begin` may reach into the range.
  Status s = kv.Last(keys::Extent(blob, 0), keys::Extent(blob, begin) + '\0', &key, &value);
  if (s.ok()) {
    uint64_t n;
    UPFS_RETURN_IF_ERROR(DecodeLength(key, value, &n));
    uint64_t start = keys::OffsetOf(key);
    if (start + n > begin) out->push_back({start, n});
  } else if (!s.IsNotFound()) {
    return s;
  }
  Status scan_status;
  UPFS_RETURN_IF_ERROR(kv.Scan(keys::Extent(blob, begin) + '\0', keys::Extent(blob, end),
                               [&](std::string_view k, std::string_view v) {
                                 uint64_t n;
                                 scan_status = DecodeLength(k, v, &n);
                                 if (!scan_status.ok()) return false;
                                 out->push_back({keys::OffsetOf(k), n});
                                 return true;
                               }));
  return scan_status;
}

Status ReadChunk(const Kv& kv, uint64_t blob, const ChunkRef& c, std::string* data) {
  Status s = kv.Get(keys::Chunk(blob, c.begin), data);
  if (s.IsNotFound()) {
    return Status::Corruption("blob " + std::to_string(blob) + ": chunk at offset " +
                              std::to_string(c.begin) + " is listed but missing");
  }
  UPFS_RETURN_IF_ERROR(s);
  if (data->size() != c.length) {
    return Status::Corruption("blob " + std::to_string(blob) + ": chunk at offset " +
                              std::to_string(c.begin) + " has " + std::to_string(data->size()) +
                              " bytes, its extent record says " + std::to_string(c.length));
  }
  return Status::OK();
}

void PutChunk(uint64_t blob, uint64_t offset, std::string_view data, KvWrite* write) {
  write->Put(keys::Chunk(blob, offset), std::string(data));
  write->Put(keys::Extent(blob, offset), EncodeLength(data.size()));
}

void DeleteChunk(uint64_t blob, uint64_t offset, KvWrite* write) {
  write->Delete(keys::Chunk(blob, offset));
  write->Delete(keys::Extent(blob, offset));
}

// Adds to `write` what removes [begin, end) from the stored chunks: chunks
// inside go, chunks straddling an edge keep their outside part.
Status AddPunch(const Kv& kv, uint64_t blob, uint64_t begin, uint64_t end, KvWrite* write) {
  std::vector<ChunkRef> chunks;
  UPFS_RETURN_IF_ERROR(OverlappingChunks(kv, blob, begin, end, &chunks));
  for (const ChunkRef& c : chunks) {
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

// A read restarts when a concurrent rewrite moved the chunk it began at.
constexpr int kReadAttempts = 16;

class KvBlob : public ByteSink {
 public:
  KvBlob(Kv* kv, uint64_t blob) : kv_(kv), blob_(blob) {}

  Status WriteAt(uint64_t offset, std::string_view data) override {
    if (data.empty()) return Status::OK();
    if (offset >= kMaxBlobLength || data.size() > kMaxBlobLength - offset) {
      return Status::TooLarge("write at offset " + std::to_string(offset) +
                              " ends beyond the largest file upfs stores");
    }
    uint64_t end = offset + data.size();
    KvWrite write;
    UPFS_RETURN_IF_ERROR(AddPunch(*kv_, blob_, offset, end, &write));
    for (uint64_t pos = 0; pos < data.size(); pos += kMaxChunkBytes) {
      PutChunk(blob_, offset + pos, data.substr(pos, kMaxChunkBytes), &write);
    }
    return kv_->Commit(write, /*sync=*/false);
  }

  Status ReadAt(uint64_t offset, size_t n, char* out) const override {
    if (n == 0 || offset >= kMaxBlobLength) {
      std::memset(out, 0, n);
      return Status::OK();
    }
    uint64_t end = offset + std::min<uint64_t>(n, kMaxBlobLength - offset);
    // Find where the chunk that may cover `offset` starts, then read every
    // chunk from there in one snapshot scan. The two steps are separate
    // snapshots: if a rewrite moved that chunk in between, the scan does
    // not begin with it, and the read starts over so it returns the old
    // bytes or the new ones, never zeros.
    Status st;
    for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
      std::memset(out, 0, n);
      std::string key, value;
      std::optional<uint64_t> floor;
      Status s = kv_->Last(keys::Extent(blob_, 0), keys::Extent(blob_, offset) + '\0', &key, &value);
      if (s.ok()) {
        floor = keys::OffsetOf(key);
      } else if (!s.IsNotFound()) {
        return s;
      }
      bool moved = false;
      bool first = true;
      st = kv_->Scan(keys::Chunk(blob_, floor.value_or(offset)), keys::Chunk(blob_, end),
                     [&](std::string_view k, std::string_view v) {
                       uint64_t begin = keys::OffsetOf(k);
                       if (std::exchange(first, false) && floor && begin != *floor) {
                         moved = true;
                         return false;
                       }
                       uint64_t chunk_end = begin + v.size();
                       uint64_t from = std::max(begin, offset);
                       uint64_t to = std::min(chunk_end, end);
                       if (from < to) std::memcpy(out + (from - offset), v.data() + (from - begin), to - from);
                       // Stop at the chunk that reaches the end: stepping on
                       // would load (and checksum) a block this read never
                       // needs, failing it if that block is damaged.
                       return chunk_end < end;
                     });
      if (!st.ok() || !(moved || (first && floor))) return st;
    }
    return Status::Busy("blob " + std::to_string(blob_) + ": range at offset " + std::to_string(offset) +
                        " kept changing during the read");
  }

  Status Extents(std::vector<Extent>* out) const override {
    out->clear();
    Status decode_status;
    UPFS_RETURN_IF_ERROR(kv_->Scan(keys::Extent(blob_, 0), keys::Extent(blob_ + 1, 0),
                                   [&](std::string_view k, std::string_view v) {
                                     uint64_t n;
                                     decode_status = DecodeLength(k, v, &n);
                                     if (!decode_status.ok()) return false;
                                     uint64_t b = keys::OffsetOf(k);
                                     if (!out->empty() && out->back().end == b) {
                                       out->back().end = b + n;
                                     } else {
                                       out->push_back({b, b + n});
                                     }
                                     return true;
                                   }));
    return decode_status;
  }

 private:
  Kv* const kv_;
  const uint64_t blob_;
};

}  // namespace

Status AddTruncate(const Kv& kv, uint64_t blob, uint64_t length, KvWrite* write) {
  return AddPunch(kv, blob, length, kMaxBlobLength, write);
}

KvStore::KvStore(std::unique_ptr<Kv> kv, uint64_t next_id) : kv_(std::move(kv)), next_id_(next_id) {}

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
    return Status::InvalidArgument("store format is '" + format + "', this upfs reads '" +
                                   std::string(keys::kFormatValue) + "'");
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

std::unique_ptr<ByteSink> KvStore::OpenBlob(uint64_t blob) { return std::make_unique<KvBlob>(kv_.get(), blob); }

Status KvStore::Apply(const Batch& batch, bool sync) {
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
      UPFS_RETURN_IF_ERROR(AddTruncate(*kv_, t->blob, t->length, &write));
    } else if (auto* db = std::get_if<Batch::DeleteBlob>(&op)) {
      UPFS_RETURN_IF_ERROR(AddTruncate(*kv_, db->blob, 0, &write));
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

Status KvStore::CompactBlobs(uint64_t first_blob, uint64_t last_blob) {
  // Freed chunks are the bulk of what compaction reclaims. Both ends are
  // keys of deleted blobs (no chunk starts at offset 2^64-1), as Kv::Compact
  // requires.
  return kv_->Compact(keys::Chunk(first_blob, 0), keys::Chunk(last_blob, ~uint64_t{0}));
}

}  // namespace upfs::store
