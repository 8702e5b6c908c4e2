// upfs_corrupt: damages one committed file in an offline store, for
// tests/integration/fsck.sh. Test-only; never installed.
//
//   upfs_corrupt [--record] STORE_DIR ASSET PATH OFFSET
//
// Default (on disk): flips one bit of byte OFFSET of the file inside its
// blob file (STORE_DIR/blobs/...), with plain file I/O, as a failing disk
// would. Only the checksum in the chunk's extent record can tell. For an
// inline chunk (a small file's, bytes in the extent record) the bit is
// flipped in the record's copy of the bytes, its checksum left as it was.
//
// --record: rewrites the extent record of the chunk holding OFFSET directly
// in LevelDB, with one bit of its checksum flipped, as a bug in upfs would:
// LevelDB's own checksums are then right, the bytes are right, and the
// record no longer matches them.
//
// Prints "chunk BEGIN END" (the damaged chunk's byte range in the file) on
// stdout. Exit status 0 when done, 1 on any error (said on stderr).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/records.h"

namespace upfs::store {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "upfs_corrupt: %s\n", message.c_str());
  return 1;
}

struct Chunk {
  uint64_t begin = 0;
  uint64_t length = 0;
  uint64_t checksum = 0;
  std::optional<std::string> inline_bytes;
  std::optional<PackedAt> packed;
};

// The chunk of `blob` that holds byte `offset` (the last one starting at
// or before it).
Status FindChunk(const Kv& kv, uint64_t blob, uint64_t offset, Chunk* out) {
  std::string value;
  bool found = false;
  UPFS_RETURN_IF_ERROR(kv.Scan(keys::Extent(blob, 0), keys::Extent(blob, offset) + '\0',
                               [&](std::string_view k, std::string_view v) {
                                 out->begin = keys::OffsetOf(k);
                                 value = v;
                                 found = true;
                                 return true;
                               }));
  if (!found) return Status::NotFound("no chunk holds offset " + std::to_string(offset));
  std::optional<std::string_view> bytes;
  if (!DecodeExtentValue(value, &out->length, &out->checksum, &bytes, &out->packed)) {
    return Status::Corruption("undecodable extent record");
  }
  if (bytes) out->inline_bytes.emplace(*bytes);
  if (out->begin + out->length <= offset) {
    return Status::NotFound("no chunk holds offset " + std::to_string(offset));
  }
  return Status::OK();
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool record = false;
  if (!args.empty() && args[0] == "--record") {
    record = true;
    args.erase(args.begin());
  }
  if (args.size() != 4) return Fail("usage: upfs_corrupt [--record] STORE_DIR ASSET PATH OFFSET");
  const std::string& asset = args[1];
  const std::string& path = args[2];
  const uint64_t offset = std::strtoull(args[3].c_str(), nullptr, 10);

  auto kv = OpenLevelDbKv(args[0] + "/db", /*create=*/false);
  if (!kv.ok()) return Fail(kv.status().ToString());
  auto files = DirBlobFiles::Open(args[0] + "/blobs");
  if (!files.ok()) return Fail(files.status().ToString());
  DirBlobFiles* blobs = files->get();
  auto opened = KvStore::Open(std::move(kv).value(), std::move(files).value(), /*create=*/false);
  if (!opened.ok()) return Fail(opened.status().ToString());
  std::unique_ptr<KvStore> store = std::move(opened).value();

  const size_t slash = path.rfind('/');
  AssetEntry entry;
  Status s =
      store->GetAssetEntry(asset, slash == std::string::npos ? "" : path.substr(0, slash),
                           slash == std::string::npos ? path : path.substr(slash + 1), &entry);
  if (!s.ok()) return Fail("asset " + asset + " file " + path + ": " + s.ToString());
  Chunk chunk;
  s = FindChunk(*store->kv(), entry.id, offset, &chunk);
  if (!s.ok()) return Fail("asset " + asset + " file " + path + ": " + s.ToString());

  if (record || (chunk.inline_bytes && !chunk.packed)) {
    std::string value;
    if (record) {
      value = chunk.packed
                  ? EncodePackedExtentValue(chunk.length, chunk.checksum ^ 1, *chunk.packed)
                  : EncodeExtentValue(chunk.length, chunk.checksum ^ 1);
      if (chunk.inline_bytes) value += *chunk.inline_bytes;
    } else {
      std::string damaged = *chunk.inline_bytes;
      damaged[offset - chunk.begin] ^= 0x01;
      value = EncodeExtentValue(chunk.length, chunk.checksum) + damaged;
      std::fprintf(stderr, "upfs_corrupt: flipped byte %llu of an inline chunk\n",
                   static_cast<unsigned long long>(offset - chunk.begin));
    }
    KvWrite write;
    write.Put(keys::Extent(entry.id, chunk.begin), value);
    s = store->kv()->Commit(write, /*sync=*/true);
    if (!s.ok()) return Fail(s.ToString());
  } else {
    // The byte in the file's blob file, or in its chunk's pack.
    const uint64_t blob = chunk.packed ? chunk.packed->pack : entry.id;
    const uint64_t where = chunk.packed ? chunk.packed->offset + (offset - chunk.begin) : offset;
    const uint64_t segment = where / DirBlobFiles::kSegmentBytes;
    const std::string file = blobs->PathOf(blob, segment);
    const auto at = static_cast<std::streamoff>(where % DirBlobFiles::kSegmentBytes);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    char c = 0;
    f.seekg(at);
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(at);
    f.write(&c, 1);
    f.flush();
    if (!f.good()) return Fail("cannot rewrite byte " + std::to_string(offset) + " of " + file);
    std::fprintf(stderr, "upfs_corrupt: flipped byte %lld of %s\n", static_cast<long long>(at),
                 file.c_str());
  }
  std::printf("chunk %llu %llu\n", static_cast<unsigned long long>(chunk.begin),
              static_cast<unsigned long long>(chunk.begin + chunk.length));
  return 0;
}

}  // namespace
}  // namespace upfs::store

int main(int argc, char** argv) { return upfs::store::Run(argc, argv); }
