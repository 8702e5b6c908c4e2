// Fsck: the offline integrity check of a KvStore (`upfs fsck STORE_DIR`).
//
// What it proves, streaming over the store once (memory grows with the
// number of files and sessions, never with their bytes):
//   * content: every committed file is rehashed from its chunks, in offset
//     order, and must equal the SHA-256 and the length its AssetEntry
//     records;
//   * coverage: every committed file's extent records ("@") cover
//     [0, length) with no hole, no overlap and nothing beyond the length;
//     every blob with chunks has an end record that bounds them;
//   * chunks: every extent record of an owned blob has its bytes in the
//     blob files, and they match the record's checksum;
//   * the index: every record decodes and sits under the key its content
//     says; every entry belongs to an asset record and a parent directory;
//     every id record ("I") names an existing entry (or asset root) with
//     that id, and every entry and asset root has its id record; asset
//     records count their files and bytes right; the next-id counter is
//     above every id in use; open sessions' nodes have their session and
//     parent; no key lies outside the layout of store/records.h;
//   * ownership: a blob whose chunks no committed file and no node of an
//     open session owns is an orphan (left by a session that died half
//     way, or by a bug), and so is a blob file that no record names (bytes
//     a crash left before their records were written). Orphans waste space
//     but hide no data; with `remove_orphans` they are deleted.
//
// A chunk whose bytes cannot be read is reported with its file and offset;
// the check goes on past it.
//
// Thread safety: the store must be offline: nothing else may write to it
// while the check runs (the LevelDB lock guarantees this for `upfs fsck`).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/kv_store.h"

namespace upfs::store {

// A streaming SHA-256, supplied by the caller: store/ links no crypto
// library (the session layer's Sha256 is the one place upfs hashes).
class FsckHasher {
 public:
  virtual ~FsckHasher() = default;
  virtual void Update(std::string_view bytes) = 0;
  // Lowercase hex digest of everything updated so far.
  virtual std::string HexDigest() = 0;
};

struct FsckOptions {
  // Makes a fresh SHA-256 stream. Required: CheckStore returns
  // InvalidArgument without it.
  std::function<std::unique_ptr<FsckHasher>()> new_sha256;

  // Delete orphaned blobs (their chunks and extent records) and node
  // records of sessions that no longer exist. Refused (reported, nothing
  // deleted) when some index record could not be read or decoded, since
  // then an owner may be missing from what the check saw.
  bool remove_orphans = false;

  // Keys deleted per write when removing orphans; each write is atomic, and
  // the last is synced.
  size_t removal_batch_keys = 1024;

  // Extent records compared with their chunks per window of the scan; the
  // bound on the memory the check holds for the index of a large file.
  size_t window_records = 4096;
};

enum class FsckProblemKind {
  kHashMismatch,        // a committed file's bytes hash to another SHA-256
  kMissingExtent,       // a committed file has no extent for a byte range
  kOverlappingExtents,  // two extents of one blob claim the same bytes
  kBeyondLength,        // a committed file has bytes past its length
  kUnreadableChunk,     // the chunk's bytes fail the store's checksum
  kExtentWithoutChunk,  // extent record whose bytes the blob files do not hold at all
  kExtentLength,        // extent length not a chunk's, or the blob file holds only part of it
  kChunkChecksum,       // the chunk's bytes differ from the checksum in its extent record
  kUndecodable,         // a record (or key) that does not decode
  kIndex,               // records that contradict each other
  kMissingId,           // an entry or asset root without its "I" record
  kDanglingId,          // an "I" record naming no such entry
  kOrphanBlob,          // chunks that nothing owns
  kOrphanNode,          // a node record of a session that does not exist
  kReadError,           // a scan of the store failed
};

// "hash mismatch", "missing extent", ...
const char* FsckProblemKindName(FsckProblemKind kind);

struct FsckProblem {
  FsckProblemKind kind = FsckProblemKind::kIndex;
  std::string asset;               // the committed asset, when the problem has one
  std::string session;             // the open session, when the problem has one
  std::string path;                // the file's path inside its asset or session
  std::optional<uint64_t> blob;    // the blob (file) id, when known
  std::optional<uint64_t> offset;  // byte offset in the file, when it has one
  std::string key;                 // the record's key, printable-escaped, when useful
  std::string message;             // what is wrong, exactly
  bool repaired = false;           // removed by remove_orphans

  // One line: "asset NAME file PATH offset N: KIND: MESSAGE", with the
  // parts that apply (session/blob/key in place of asset/file as fits).
  // Names are printable-escaped, so a line never breaks.
  std::string ToString() const;
};

struct FsckReport {
  std::vector<FsckProblem> problems;

  uint64_t assets = 0;          // asset records
  uint64_t asset_files = 0;     // committed files
  uint64_t files_verified = 0;  // committed files whose hash and length held
  uint64_t bytes_hashed = 0;
  uint64_t sessions = 0;  // open sessions
  uint64_t session_nodes = 0;
  uint64_t chunks = 0;  // extent records seen
  uint64_t orphan_blobs = 0;
  uint64_t orphan_bytes = 0;
  uint64_t keys_removed = 0;  // by remove_orphans
  // Why remove_orphans removed nothing although orphans were found; empty
  // otherwise.
  std::string removal_skipped;

  // No problem left unrepaired.
  bool clean() const;
  // Problems found that were not repaired.
  size_t unrepaired() const;
  // "3 assets, 10 files (10 verified, 5242880 bytes hashed), ..."
  std::string Summary() const;
};

// Checks `store`, which must be offline (see the top). Returns the report;
// problems in the store are in the report, never the Status. Fails only
// when it cannot run at all: no hasher (InvalidArgument), or orphan
// removal's own writes fail (what was removed before stays removed; the
// store is consistent after each write).
Result<FsckReport> CheckStore(KvStore& store, const FsckOptions& options);

// `bytes` with printable ASCII kept (backslash doubled) and every other
// byte as \xNN: a store key or a name, safe on one line.
std::string EscapeBytes(std::string_view bytes);

}  // namespace upfs::store
