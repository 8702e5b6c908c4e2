// The key layout and record encoding of KvStore. Every record value starts
// with a format byte, so a record written by another format is refused as
// Corruption instead of being misread.
//
// Keys (ids and offsets as 8-byte big-endian, so they sort numerically):
//   "V"                         store format ("upfs-store 2")
//   "N"                         next id to hand out
//   "S" name                    SessionRecord of an open session
//   "n" session_id node_id      NodeRecord
//   "C" blob offset             chunk bytes stored at [offset, offset+size)
//   "X" blob offset             chunk length and the XXH3-64 of the chunk's
//                               bytes (8 + 8 bytes); C and X keys are always
//                               written together, so extents can be listed
//                               without reading chunk data, and a chunk whose
//                               bytes changed behind LevelDB's back (its block
//                               checksums are LevelDB's own) is caught
//   "A" name                    AssetRecord
//   "E" asset \0 dir \0 name    AssetEntry
//   "I" id                      asset \0 dir \0 name: where a committed id is
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/status.h"
#include "store/store.h"

namespace upfs::store::keys {

inline constexpr std::string_view kFormatKey = "V";
// Format history: 1 had 8-byte extent records (no chunk checksum). A store
// of another format is refused at open; there is no in-place upgrade.
inline constexpr std::string_view kFormatValue = "upfs-store 2";
inline constexpr std::string_view kNextIdKey = "N";

void AppendBigEndian64(std::string* out, uint64_t v);
uint64_t ReadBigEndian64(std::string_view in);  // in.size() >= 8

std::string Session(std::string_view name);
std::string SessionPrefix();
std::string Node(uint64_t session_id, uint64_t node_id);
std::string NodePrefix(uint64_t session_id);
std::string Chunk(uint64_t blob, uint64_t offset);
std::string Extent(uint64_t blob, uint64_t offset);
// Offset encoded in a chunk or extent key.
uint64_t OffsetOf(std::string_view chunk_or_extent_key);
std::string Asset(std::string_view name);
std::string AssetPrefix();
std::string Entry(std::string_view asset, std::string_view dir, std::string_view name);
std::string EntryDirPrefix(std::string_view asset, std::string_view dir);
std::string EntryAssetPrefix(std::string_view asset);
std::string Id(uint64_t id);

// The first key after every key that starts with `prefix`.
std::string PrefixEnd(std::string_view prefix);

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

// An extent record's value: the chunk's length and ChunkChecksum.
inline constexpr size_t kExtentValueSize = 16;
std::string EncodeExtentValue(uint64_t length, uint64_t checksum);
// False (and nothing set) unless `in` is kExtentValueSize bytes.
bool DecodeExtentValue(std::string_view in, uint64_t* length, uint64_t* checksum);
Status DecodeLocation(std::string_view in, AssetLocation* l);

}  // namespace upfs::store
