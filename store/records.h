// The key layout and record encoding of KvStore. Every record value starts
// with a format byte, so a record written by another format is refused as
// Corruption instead of being misread. Fields added within a format are
// appended at the end of a record and optional: a record that ends before
// them decodes with their documented defaults (atime and ctime: the
// mtime; subdirectory counts: kUnknownCount).
//
// Keys (ids and offsets as 8-byte big-endian, so they sort numerically):
//   "V"                         store format ("upfs-store 7")
//   "N"                         next id to hand out
//   "U"                         present while a process serves the store
//                               (KvStore::BeginUse): found at start, the last
//                               one stopped uncleanly
//   "U" mount                   the same for one mount of a store shared by
//                               several (RADOS): its lease id (16 hex
//                               digits) -> its description (MountLease)
//   "H" session_id              the mount that holds an open session, on a
//                               store shared by several mounts: its id
//   "S" name                    SessionRecord of an open session
//   "n" session_id node_id      NodeRecord
//   "@" blob offset             a chunk: bytes [offset, offset + length) of
//                               the blob, whose bytes are in BlobFiles; the
//                               value is the length and the XXH3-64 of those
//                               bytes (8 + 8 bytes), so a chunk whose bytes
//                               changed or were lost is caught on every read.
//                               A packed chunk (small files: KvStore's
//                               kInlineChunkEnd) has its bytes in a pack
//                               (a blob shared by many small files' chunks,
//                               "K" below): the length has bit 63 set, and
//                               the pack's id and the offset in it follow
//                               (8 + 8 bytes). An inline chunk (a part kept
//                               of a packed chunk that was overwritten;
//                               format 4 to 6's small files) has its bytes
//                               here, after the first 16, and none in
//                               BlobFiles
//   "@" blob 0xff               the blob's end record: an upper bound of where
//                               its chunks end (8 bytes), present whenever it
//                               has chunks. It sorts after the blob's chunks
//                               (their offsets are below 2^62, so their first
//                               byte is below 0x40), so a scan of one blob's
//                               chunks ends on a live key of that blob
//                               (KvStore: why that matters)
//   "A" name                    AssetRecord
//   "F" pack offset             pages of a pack to free (value: how many
//                               bytes, 8 bytes big-endian): written in the
//                               batch that removes the records of the chunk
//                               held there, removed once they are punched
//                               out, so a crash in between frees them at the
//                               next start (KvStore::BeginUse)
//   "K" pack                    a pack: a blob in BlobFiles whose bytes are
//                               packed chunks of other blobs (value empty).
//                               Written before the first chunk placed in it;
//                               the pack and this record go once no chunk is
//                               left in it (KvStore)
//   "E" asset \0 dir \0 name    AssetEntry
//   "P" name                    a commit whose post_commit program has not
//                               yet succeeded (the asset's name): written
//                               in the commit's batch, removed once the
//                               program exits 0. Value: on a shared store,
//                               the id of the mount that delivers it (the
//                               committer's, or a mount's that took it
//                               over once the committer's lease was
//                               gone); else empty
//   "R" blob                    a file of a removed asset whose bytes wait for
//                               its last reader to close: freed then, or
//                               once no process reads it (the next start;
//                               on a store several mounts share, any
//                               mount's sweep, once no live mount has an
//                               "O" record for it). Value: on a shared
//                               store, the id of the mount that removed it
//                               (for fsck and the operator only: the "O"
//                               records decide); else empty
//   "O" blob mount              a mount (its id, 16 hex digits) reads the
//                               committed file `blob` (value empty): on a
//                               store several mounts share, written before
//                               its first reader is served and taken back
//                               after its last one closed (by its next
//                               sweep or stop), so a removed file's bytes
//                               wait for the readers of every live mount
//   "Q" uid                     several mounts: what each live mount may hold
//                               for the uid against -o quota and -o
//                               max_sessions (its grant: bytes, sessions),
//                               one record per uid changed by compare and
//                               set, so that the grants together never
//                               pass the limits
//   "I" id                      asset \0 dir \0 name: where a committed id is
//                               (AssetLocation; dir and name empty for an
//                               asset's root)
//
// RadosKv keeps its intents ("T", rados_kv.h) among these keys; they are
// the Kv's own, not records of this layout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace upfs::store::keys {

inline constexpr std::string_view kFormatKey = "V";
// Format history: 1 had 8-byte extent records (no chunk checksum); 2 kept
// chunk bytes in the Kv under "C" keys; 3 had no blob end records; 4 had no
// inline chunks; 5 kept the extent records under "X", among the other
// records; 6 had no packed chunks ("K"). 3 to 6 are upgraded in place when
// opened (KvStore::Open: the extent records move to "@"; end records are
// written for 3; the new format record keeps a upfs that cannot read the
// new layout away). A store of any other format is refused at open.
inline constexpr std::string_view kFormatValue = "upfs-store 7";
inline constexpr std::string_view kFormatWithoutPacks = "upfs-store 6";
inline constexpr std::string_view kFormatWithoutBlobEnds = "upfs-store 3";
inline constexpr std::string_view kFormatWithoutInline = "upfs-store 4";
inline constexpr std::string_view kFormatExtentsAmongRecords = "upfs-store 5";

// The tag of extent and blob end records. It sorts before every other tag,
// and blob ids grow, so the records a running store writes (the newest
// blobs' extents, then sessions, nodes, entries) span a key range that
// leaves out the extent records of every older blob: LevelDB's
// compactions, which rewrite every table overlapping a new table's key
// range, then do not rewrite the history's chunks (inline bytes included)
// again and again. Under format 5's "X", between "V" and "n", every new
// table spanned them all: 5x the uploaded bytes rewritten for 24 KiB
// files, 55x for 4 KiB (docs/performance.md).
inline constexpr char kExtentTag = '@';
inline constexpr char kFormat5ExtentTag = 'X';
// The tags of the other keys (the layout above).
inline constexpr char kAssetTag = 'A';
inline constexpr char kEntryTag = 'E';
inline constexpr char kPendingFreeTag = 'F';
inline constexpr char kHolderTag = 'H';
inline constexpr char kIdTag = 'I';
inline constexpr char kPackTag = 'K';
inline constexpr char kNextIdTag = 'N';
inline constexpr char kNoticeTag = 'P';
inline constexpr char kQuotaTag = 'Q';
inline constexpr char kReaderTag = 'O';
inline constexpr char kRemovedTag = 'R';
inline constexpr char kSessionTag = 'S';
inline constexpr char kInUseTag = 'U';
inline constexpr char kFormatTag = 'V';
inline constexpr char kNodeTag = 'n';
// RadosKv's intents (not a record of the layout: see above).
inline constexpr char kIntentTag = 'T';

// Every tag of the layout, in key order: a key that starts with another
// byte is not one of upfs's records (upfs fsck reports it).
inline constexpr char kTagList[] = {kExtentTag,  kAssetTag,  kEntryTag,  kPendingFreeTag,
                                    kHolderTag,  kIdTag,     kPackTag,   kNextIdTag,
                                    kReaderTag,  kNoticeTag, kQuotaTag,  kRemovedTag,
                                    kSessionTag, kInUseTag,  kFormatTag, kNodeTag};
inline constexpr std::string_view kTags(kTagList, sizeof kTagList);
static_assert(std::is_sorted(kTags.begin(), kTags.end()));

inline constexpr std::string_view kNextIdKey = "N";
inline constexpr std::string_view kInUseKey = "U";
static_assert(kFormatKey[0] == kFormatTag && kNextIdKey[0] == kNextIdTag &&
              kInUseKey[0] == kInUseTag);

void AppendBigEndian64(std::string* out, uint64_t v);
uint64_t ReadBigEndian64(std::string_view in);  // in.size() >= 8

std::string Session(std::string_view name);
// A shared store's records of mounts and holders (above).
std::string InUse(std::string_view mount);
// Whether `s` has the form of a mount's id (MountLease::Id: 16 lowercase
// hex digits).
bool IsMountId(std::string_view s);
std::string Holder(uint64_t session_id);
std::string HolderPrefix();
std::string SessionPrefix();
std::string Node(uint64_t session_id, uint64_t node_id);
std::string NodePrefix(uint64_t session_id);
std::string NodePrefix();  // every session's nodes
std::string Extent(uint64_t blob, uint64_t offset);
// Every extent and end record starts with this prefix (kExtentTag).
std::string ExtentPrefix();
// Blob encoded in an extent or end record's key (at least 9 bytes).
uint64_t BlobOf(std::string_view extent_or_end_key);
// Offset encoded in an extent key.
uint64_t OffsetOf(std::string_view chunk_or_extent_key);
std::string BlobEnd(uint64_t blob);
// Whether `key`, under kExtentTag, is an end record's rather than a chunk's.
bool IsBlobEnd(std::string_view key);
std::string Asset(std::string_view name);
std::string AssetPrefix();
std::string Entry(std::string_view asset, std::string_view dir, std::string_view name);
std::string EntryDirPrefix(std::string_view asset, std::string_view dir);
std::string EntryAssetPrefix(std::string_view asset);
std::string EntryPrefix();  // every asset's entries
std::string Id(uint64_t id);
std::string IdPrefix();
std::string Notice(std::string_view asset);
std::string NoticePrefix();
std::string Removed(uint64_t blob);
std::string RemovedPrefix();
std::string Pack(uint64_t pack);
std::string PackPrefix();
std::string PendingFree(uint64_t pack, uint64_t offset);
std::string PendingFreePrefix();
// The live mounts' grants of a uid's per-user limits (several mounts).
std::string QuotaGrants(uint32_t uid);
std::string QuotaGrantsPrefix();
// A mount's record that it reads `blob` (mount: its id).
std::string Reader(uint64_t blob, std::string_view mount);
std::string ReaderPrefix(uint64_t blob);
std::string ReaderPrefix();  // every blob's
// A Reader key's blob and mount; false for another shape.
bool ParseReader(std::string_view key, uint64_t* blob, std::string_view* mount);

// The first key after every key that starts with `prefix`.
std::string PrefixEnd(std::string_view prefix);

// Parsing keys: each returns false (and sets nothing) for a key that is
// not of its shape.
//
// The name in a Session, Asset or Notice key (whatever follows the tag).
std::string_view NameOf(std::string_view key);
// The id of a key that is a tag and one id: Id, Removed, Holder, Pack,
// QuotaGrants (the uid).
bool ParseNumbered(std::string_view key, uint64_t* id);
// A key that is a tag and two numbers: Node (session id, node id), a
// chunk's Extent (blob, offset) and PendingFree (pack, offset).
bool ParsePair(std::string_view key, uint64_t* first, uint64_t* second);
// Where an Entry key puts its entry.
bool ParseEntry(std::string_view key, AssetLocation* where);

}  // namespace upfs::store::keys

namespace upfs::store {

std::string EncodeSession(const SessionRecord& r);
Status DecodeSession(std::string_view in, SessionRecord* r);
std::string EncodeNode(const NodeRecord& r);
Status DecodeNode(std::string_view in, NodeRecord* r);
std::string EncodeAsset(const AssetRecord& r);
Status DecodeAsset(std::string_view in, AssetRecord* r);
std::string EncodeEntry(const AssetEntry& e);
Status DecodeEntry(std::string_view in, AssetEntry* e);
std::string EncodeLocation(const AssetLocation& l);

// The checksum of a chunk's bytes kept in its extent record: XXH3-64
// (libxxhash). Chosen by measurement: ~9-10 GB/s for 1 MiB chunks on one
// core of the 2-core CI machine, so checking every read and every write
// costs ~10% of a core at 1 GB/s; zlib's crc32 managed ~2 GB/s.
uint64_t ChunkChecksum(std::string_view bytes);

// Where a packed chunk's bytes are: pack `pack` (a blob), from `offset`.
struct PackedAt {
  uint64_t pack = 0;
  uint64_t offset = 0;
  bool operator==(const PackedAt&) const = default;
};

// An extent record's value: the chunk's length and ChunkChecksum; for an
// inline chunk (its bytes kept in the record, not in the blob files) the
// bytes follow; for a packed chunk (its bytes in a pack, see KvStore), the
// length has kPackedBit set and the PackedAt follows.
inline constexpr size_t kExtentValueSize = 16;
inline constexpr size_t kPackedExtentValueSize = 32;
inline constexpr uint64_t kPackedBit = uint64_t{1} << 63;
std::string EncodeExtentValue(uint64_t length, uint64_t checksum);
std::string EncodeInlineExtentValue(std::string_view bytes);
std::string EncodePackedExtentValue(uint64_t length, uint64_t checksum, PackedAt at);
// False (and nothing set) unless `in` is kExtentValueSize bytes (then
// *inline_bytes and *packed are nullopt), or that plus exactly the length it
// gives (then *inline_bytes views those bytes in `in`), or a packed chunk's
// kPackedExtentValueSize bytes (then *packed is set).
bool DecodeExtentValue(std::string_view in, uint64_t* length, uint64_t* checksum,
                       std::optional<std::string_view>* inline_bytes,
                       std::optional<PackedAt>* packed);
Status DecodeLocation(std::string_view in, AssetLocation* l);

// A QuotaGrants record's value: for each mount, its id (16 hex digits),
// then the bytes and the sessions it may hold for the uid, 8 bytes
// big-endian each.
struct MountGrant {
  std::string mount;
  QuotaGrant grant;
};
std::string EncodeQuotaGrants(const std::vector<MountGrant>& grants);
Status DecodeQuotaGrants(std::string_view in, std::vector<MountGrant>* grants);

// A blob end record's value: the bound, 8 bytes big-endian.
std::string EncodeBlobEnd(uint64_t end);
// False (and nothing set) unless `in` is 8 bytes.
bool DecodeBlobEnd(std::string_view in, uint64_t* end);

}  // namespace upfs::store
