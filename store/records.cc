#include "store/records.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace upfs::store {
namespace keys {

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

uint64_t ReadBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

namespace {
std::string Tagged(char tag, uint64_t a) {
  std::string k(1, tag);
  AppendBigEndian64(&k, a);
  return k;
}
std::string Tagged(char tag, uint64_t a, uint64_t b) {
  std::string k = Tagged(tag, a);
  AppendBigEndian64(&k, b);
  return k;
}
std::string Named(char tag, std::string_view name) {
  std::string k(1, tag);
  k.append(name);
  return k;
}
}  // namespace

std::string Session(std::string_view name) { return Named(kSessionTag, name); }
std::string SessionPrefix() { return std::string(1, kSessionTag); }
std::string InUse(std::string_view mount) { return Named(kInUseTag, mount); }

bool IsMountId(std::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}
std::string Reader(uint64_t blob, std::string_view mount) {
  return Tagged(kReaderTag, blob).append(mount);
}
std::string ReaderPrefix(uint64_t blob) { return Tagged(kReaderTag, blob); }
std::string ReaderPrefix() { return std::string(1, kReaderTag); }
bool ParseReader(std::string_view key, uint64_t* blob, std::string_view* mount) {
  if (key.size() != 1 + 8 + 16 || key[0] != kReaderTag || !IsMountId(key.substr(9))) return false;
  *blob = ReadBigEndian64(key.substr(1));
  *mount = key.substr(9);
  return true;
}
std::string Holder(uint64_t session_id) { return Tagged(kHolderTag, session_id); }
std::string HolderPrefix() { return std::string(1, kHolderTag); }
std::string Node(uint64_t session_id, uint64_t node_id) {
  return Tagged(kNodeTag, session_id, node_id);
}
std::string NodePrefix(uint64_t session_id) { return Tagged(kNodeTag, session_id); }
std::string NodePrefix() { return std::string(1, kNodeTag); }
std::string Extent(uint64_t blob, uint64_t offset) { return Tagged(kExtentTag, blob, offset); }
std::string ExtentPrefix() { return std::string(1, kExtentTag); }
uint64_t BlobOf(std::string_view key) { return ReadBigEndian64(key.substr(1)); }
uint64_t OffsetOf(std::string_view key) { return ReadBigEndian64(key.substr(9)); }
std::string BlobEnd(uint64_t blob) { return Tagged(kExtentTag, blob) + '\xff'; }
bool IsBlobEnd(std::string_view key) {
  return key.size() == 10 && key[0] == kExtentTag && key[9] == '\xff';
}
std::string Asset(std::string_view name) { return Named(kAssetTag, name); }
std::string AssetPrefix() { return std::string(1, kAssetTag); }

std::string Entry(std::string_view asset, std::string_view dir, std::string_view name) {
  std::string k = EntryDirPrefix(asset, dir);
  k.append(name);
  return k;
}
std::string EntryDirPrefix(std::string_view asset, std::string_view dir) {
  std::string k = EntryAssetPrefix(asset);
  k.append(dir);
  k.push_back('\0');
  return k;
}
std::string EntryAssetPrefix(std::string_view asset) {
  std::string k = Named(kEntryTag, asset);
  k.push_back('\0');
  return k;
}
std::string EntryPrefix() { return std::string(1, kEntryTag); }
std::string Id(uint64_t id) { return Tagged(kIdTag, id); }
std::string IdPrefix() { return std::string(1, kIdTag); }
std::string Notice(std::string_view asset) { return Named(kNoticeTag, asset); }
std::string NoticePrefix() { return std::string(1, kNoticeTag); }
std::string Removed(uint64_t blob) { return Tagged(kRemovedTag, blob); }
std::string RemovedPrefix() { return std::string(1, kRemovedTag); }
std::string Pack(uint64_t pack) { return Tagged(kPackTag, pack); }
std::string PackPrefix() { return std::string(1, kPackTag); }
std::string PendingFree(uint64_t pack, uint64_t offset) {
  std::string k = Tagged(kPendingFreeTag, pack);
  AppendBigEndian64(&k, offset);
  return k;
}
std::string PendingFreePrefix() { return std::string(1, kPendingFreeTag); }
std::string QuotaGrants(uint32_t uid) { return Tagged(kQuotaTag, uid); }
std::string QuotaGrantsPrefix() { return std::string(1, kQuotaTag); }

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last != 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\xff');  // unreachable for our non-empty, non-0xff prefixes
}

std::string_view NameOf(std::string_view key) {
  return key.substr(std::min<size_t>(1, key.size()));
}

bool ParseNumbered(std::string_view key, uint64_t* id) {
  if (key.size() != 1 + 8) return false;
  *id = ReadBigEndian64(key.substr(1));
  return true;
}

bool ParsePair(std::string_view key, uint64_t* first, uint64_t* second) {
  if (key.size() != 1 + 8 + 8) return false;
  *first = ReadBigEndian64(key.substr(1));
  *second = ReadBigEndian64(key.substr(9));
  return true;
}

bool ParseEntry(std::string_view key, AssetLocation* where) {
  if (key.empty() || key[0] != kEntryTag) return false;
  key.remove_prefix(1);
  const size_t a = key.find('\0');
  if (a == std::string_view::npos) return false;
  const size_t d = key.find('\0', a + 1);
  if (d == std::string_view::npos) return false;
  where->asset = std::string(key.substr(0, a));
  where->dir = std::string(key.substr(a + 1, d - a - 1));
  where->name = std::string(key.substr(d + 1));
  return true;
}

}  // namespace keys

namespace {

// Format byte of every record value.
constexpr char kRecordFormat = 1;

class Encoder {
 public:
  Encoder() { out_.push_back(kRecordFormat); }
  void U64(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bool(bool v) { U64(v ? 1 : 0); }
  void Str(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  void Map(const Xattrs& m) {
    U64(m.size());
    for (const auto& [k, v] : m) {
      Str(k);
      Str(v);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Encoder wrote; every read is bounds-checked and a short or
// malformed input fails the whole decode with Corruption.
class Decoder {
 public:
  Decoder(std::string_view in, const char* what) : in_(in), what_(what) {
    if (in_.empty() || in_[0] != kRecordFormat) {
      ok_ = false;
    } else {
      in_.remove_prefix(1);
    }
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int shift = 0; ok_ && shift < 64; shift += 7) {
      if (in_.empty()) break;
      auto b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    ok_ = false;
    return 0;
  }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  uint32_t U32() {
    uint64_t v = U64();
    if (v > UINT32_MAX) ok_ = false;
    return static_cast<uint32_t>(v);
  }
  bool Bool() { return U64() != 0; }
  // Fields added to a record later are appended; a record written before
  // them ends here, and the caller fills in their defaults.
  bool AtEnd() const { return !ok_ || in_.empty(); }
  std::string Str() {
    uint64_t n = U64();
    if (!ok_ || n > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  Xattrs Map() {
    Xattrs m;
    uint64_t n = U64();
    for (uint64_t i = 0; ok_ && i < n; ++i) {
      std::string k = Str();
      m[std::move(k)] = Str();
    }
    return m;
  }
  Status Finish() const {
    if (ok_ && in_.empty()) return Status::OK();
    return Status::Corruption(std::string("malformed ") + what_ + " record");
  }

 private:
  std::string_view in_;
  const char* what_;
  bool ok_ = true;
};

// atime and ctime were appended to every record after format 3 began;
// an older record takes both from its mtime (what upfs reported then).
template <typename Record>
void DecodeTimes(Decoder* d, Record* r) {
  if (d->AtEnd()) {
    r->atime_ns = r->ctime_ns = r->mtime_ns;
    return;
  }
  r->atime_ns = d->I64();
  r->ctime_ns = d->I64();
}

}  // namespace

std::string EncodeSession(const SessionRecord& r) {
  Encoder e;
  e.U64(r.id);
  e.Str(r.name);
  e.U64(r.uid);
  e.U64(r.gid);
  e.U64(r.mode);
  e.I64(r.created_ns);
  e.I64(r.mtime_ns);
  e.Bool(r.write_once);
  e.Map(r.xattrs);
  e.I64(r.atime_ns);
  e.I64(r.ctime_ns);
  return e.Take();
}

Status DecodeSession(std::string_view in, SessionRecord* r) {
  Decoder d(in, "session");
  r->id = d.U64();
  r->name = d.Str();
  r->uid = d.U32();
  r->gid = d.U32();
  r->mode = d.U32();
  r->created_ns = d.I64();
  r->mtime_ns = d.I64();
  r->write_once = d.Bool();
  r->xattrs = d.Map();
  DecodeTimes(&d, r);
  return d.Finish();
}

std::string EncodeNode(const NodeRecord& r) {
  Encoder e;
  e.U64(r.id);
  e.U64(r.parent);
  e.Str(r.name);
  e.Bool(r.is_dir);
  e.U64(r.mode);
  e.U64(r.uid);
  e.U64(r.gid);
  e.I64(r.mtime_ns);
  e.U64(r.length);
  e.Map(r.xattrs);
  e.I64(r.atime_ns);
  e.I64(r.ctime_ns);
  return e.Take();
}

Status DecodeNode(std::string_view in, NodeRecord* r) {
  Decoder d(in, "node");
  r->id = d.U64();
  r->parent = d.U64();
  r->name = d.Str();
  r->is_dir = d.Bool();
  r->mode = d.U32();
  r->uid = d.U32();
  r->gid = d.U32();
  r->mtime_ns = d.I64();
  r->length = d.U64();
  r->xattrs = d.Map();
  DecodeTimes(&d, r);
  return d.Finish();
}

std::string EncodeAsset(const AssetRecord& r) {
  Encoder e;
  e.Str(r.name);
  e.U64(r.root_id);
  e.U64(r.uid);
  e.U64(r.gid);
  e.U64(r.mode);
  e.I64(r.mtime_ns);
  e.I64(r.committed_ns);
  e.U64(r.files);
  e.U64(r.bytes);
  e.Map(r.xattrs);
  e.I64(r.atime_ns);
  e.I64(r.ctime_ns);
  e.U64(r.subdirs);
  return e.Take();
}

Status DecodeAsset(std::string_view in, AssetRecord* r) {
  Decoder d(in, "asset");
  r->name = d.Str();
  r->root_id = d.U64();
  r->uid = d.U32();
  r->gid = d.U32();
  r->mode = d.U32();
  r->mtime_ns = d.I64();
  r->committed_ns = d.I64();
  r->files = d.U64();
  r->bytes = d.U64();
  r->xattrs = d.Map();
  DecodeTimes(&d, r);
  r->subdirs = d.AtEnd() ? kUnknownCount : d.U64();
  return d.Finish();
}

std::string EncodeEntry(const AssetEntry& x) {
  Encoder e;
  e.Str(x.asset);
  e.Str(x.dir);
  e.Str(x.name);
  e.U64(x.id);
  e.Bool(x.is_dir);
  e.U64(x.mode);
  e.U64(x.uid);
  e.U64(x.gid);
  e.I64(x.mtime_ns);
  e.U64(x.length);
  e.Str(x.sha256);
  e.Map(x.xattrs);
  e.I64(x.atime_ns);
  e.I64(x.ctime_ns);
  e.U64(x.subdirs);
  return e.Take();
}

Status DecodeEntry(std::string_view in, AssetEntry* x) {
  Decoder d(in, "asset entry");
  x->asset = d.Str();
  x->dir = d.Str();
  x->name = d.Str();
  x->id = d.U64();
  x->is_dir = d.Bool();
  x->mode = d.U32();
  x->uid = d.U32();
  x->gid = d.U32();
  x->mtime_ns = d.I64();
  x->length = d.U64();
  x->sha256 = d.Str();
  x->xattrs = d.Map();
  DecodeTimes(&d, x);
  x->subdirs = d.AtEnd() ? kUnknownCount : d.U64();
  return d.Finish();
}

std::string EncodeLocation(const AssetLocation& l) {
  Encoder e;
  e.Str(l.asset);
  e.Str(l.dir);
  e.Str(l.name);
  return e.Take();
}

Status DecodeLocation(std::string_view in, AssetLocation* l) {
  Decoder d(in, "asset location");
  l->asset = d.Str();
  l->dir = d.Str();
  l->name = d.Str();
  return d.Finish();
}

uint64_t ChunkChecksum(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string EncodeExtentValue(uint64_t length, uint64_t checksum) {
  std::string v;
  keys::AppendBigEndian64(&v, length);
  keys::AppendBigEndian64(&v, checksum);
  return v;
}

std::string EncodeInlineExtentValue(std::string_view bytes) {
  std::string v = EncodeExtentValue(bytes.size(), ChunkChecksum(bytes));
  v.append(bytes);
  return v;
}

std::string EncodePackedExtentValue(uint64_t length, uint64_t checksum, PackedAt at) {
  std::string v = EncodeExtentValue(length | kPackedBit, checksum);
  keys::AppendBigEndian64(&v, at.pack);
  keys::AppendBigEndian64(&v, at.offset);
  return v;
}

std::string EncodeBlobEnd(uint64_t end) {
  std::string v;
  keys::AppendBigEndian64(&v, end);
  return v;
}

bool DecodeBlobEnd(std::string_view in, uint64_t* end) {
  if (in.size() != 8) return false;
  *end = keys::ReadBigEndian64(in);
  return true;
}

bool DecodeExtentValue(std::string_view in, uint64_t* length, uint64_t* checksum,
                       std::optional<std::string_view>* inline_bytes,
                       std::optional<PackedAt>* packed) {
  if (in.size() < kExtentValueSize) return false;
  const uint64_t n = keys::ReadBigEndian64(in);
  const std::string_view rest = in.substr(kExtentValueSize);
  if ((n & kPackedBit) != 0) {
    if (in.size() != kPackedExtentValueSize) return false;
    *length = n & ~kPackedBit;
    *checksum = keys::ReadBigEndian64(in.substr(8));
    inline_bytes->reset();
    packed->emplace(PackedAt{keys::ReadBigEndian64(rest), keys::ReadBigEndian64(rest.substr(8))});
    return true;
  }
  if (!rest.empty() && rest.size() != n) return false;
  *length = n;
  *checksum = keys::ReadBigEndian64(in.substr(8));
  packed->reset();
  if (rest.empty()) {
    inline_bytes->reset();
  } else {
    *inline_bytes = rest;
  }
  return true;
}

namespace {
constexpr size_t kMountGrantSize = 16 + 8 + 8;
}  // namespace

std::string EncodeQuotaGrants(const std::vector<MountGrant>& grants) {
  std::string out;
  out.reserve(grants.size() * kMountGrantSize);
  for (const MountGrant& g : grants) {
    out += g.mount;
    keys::AppendBigEndian64(&out, g.grant.bytes);
    keys::AppendBigEndian64(&out, g.grant.sessions);
  }
  return out;
}

Status DecodeQuotaGrants(std::string_view in, std::vector<MountGrant>* grants) {
  grants->clear();
  if (in.size() % kMountGrantSize != 0)
    return Status::Corruption("quota grants: " + std::to_string(in.size()) +
                              " bytes, not a multiple of " + std::to_string(kMountGrantSize));
  for (size_t at = 0; at < in.size(); at += kMountGrantSize) {
    std::string_view mount = in.substr(at, 16);
    if (!keys::IsMountId(mount)) return Status::Corruption("quota grants: a mount id is malformed");
    grants->push_back(
        {std::string(mount),
         {keys::ReadBigEndian64(in.substr(at + 16)), keys::ReadBigEndian64(in.substr(at + 24))}});
  }
  return Status::OK();
}

}  // namespace upfs::store
