// upfs_corrupt: damages one byte of a committed file in an offline store,
// for tests/integration/fsck.sh. Test-only; never installed.
//
//   upfs_corrupt [--logical] STORE_DIR ASSET PATH OFFSET
//
// Default (physical): compacts the store so the file's chunks live in
// LevelDB table files, then flips one bit of byte OFFSET of the file inside
// the table file, as a failing disk would. The block's checksum no longer
// matches, so every read of it fails.
//
// --logical: rewrites the chunk holding OFFSET through the Kv with that byte
// flipped, as a bug in upfs would: LevelDB's checksums are then right and
// only the checksum in the chunk's extent record (and the file's SHA-256)
// can tell.
//
// Prints "chunk BEGIN END" (the damaged chunk's byte range in the file) on
// stdout. Exit status 0 when done, 1 on any error (said on stderr).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
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
  std::string bytes;
};

// The chunk of `blob` that holds byte `offset`.
Status FindChunk(const Kv& kv, uint64_t blob, uint64_t offset, Chunk* out) {
  std::string key;
  UPFS_RETURN_IF_ERROR(kv.Last(keys::Extent(blob, 0), keys::Extent(blob, offset) + '\0', &key, &out->bytes));
  out->begin = keys::OffsetOf(key);
  UPFS_RETURN_IF_ERROR(kv.Get(keys::Chunk(blob, out->begin), &out->bytes));
  if (out->begin + out->bytes.size() <= offset) {
    return Status::NotFound("no chunk holds offset " + std::to_string(offset));
  }
  return Status::OK();
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool logical = false;
  if (!args.empty() && args[0] == "--logical") {
    logical = true;
    args.erase(args.begin());
  }
  if (args.size() != 4) return Fail("usage: upfs_corrupt [--logical] STORE_DIR ASSET PATH OFFSET");
  const std::string db = args[0] + "/db";
  const std::string& asset = args[1];
  const std::string& path = args[2];
  const uint64_t offset = std::strtoull(args[3].c_str(), nullptr, 10);

  auto kv = OpenLevelDbKv(db, /*create=*/false);
  if (!kv.ok()) return Fail(kv.status().ToString());
  auto opened = KvStore::Open(std::move(kv).value(), /*create=*/false);
  if (!opened.ok()) return Fail(opened.status().ToString());
  std::unique_ptr<KvStore> store = std::move(opened).value();

  const size_t slash = path.rfind('/');
  AssetEntry entry;
  Status s = store->GetAssetEntry(asset, slash == std::string::npos ? "" : path.substr(0, slash),
                                  slash == std::string::npos ? path : path.substr(slash + 1), &entry);
  if (!s.ok()) return Fail("asset " + asset + " file " + path + ": " + s.ToString());
  Chunk chunk;
  s = FindChunk(*store->kv(), entry.id, offset, &chunk);
  if (!s.ok()) return Fail("asset " + asset + " file " + path + ": " + s.ToString());
  const size_t in_chunk = offset - chunk.begin;

  if (logical) {
    std::string bytes = chunk.bytes;
    bytes[in_chunk] ^= 0x01;
    KvWrite write;
    write.Put(keys::Chunk(entry.id, chunk.begin), bytes);
    s = store->kv()->Commit(write, /*sync=*/true);
    if (!s.ok()) return Fail(s.ToString());
  } else {
    // Into table files, then closed, so nothing holds the file open.
    s = store->kv()->Compact("", "\xff");
    if (!s.ok()) return Fail(s.ToString());
    store.reset();
    // The byte is found by its neighbourhood: up to 32 bytes of the chunk
    // from OFFSET on, which must occur once in all table files.
    const std::string needle = chunk.bytes.substr(in_chunk, 32);
    std::vector<std::pair<std::filesystem::path, size_t>> hits;
    for (const auto& file : std::filesystem::directory_iterator(db)) {
      if (file.path().extension() != ".ldb") continue;
      std::ifstream in(file.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (size_t at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) {
        hits.emplace_back(file.path(), at);
      }
    }
    if (hits.size() != 1) {
      return Fail("the bytes at offset " + std::to_string(offset) + " occur " + std::to_string(hits.size()) +
                  " times in the table files; need exactly once (use random content)");
    }
    std::fstream f(hits[0].first, std::ios::in | std::ios::out | std::ios::binary);
    char c = 0;
    f.seekg(static_cast<std::streamoff>(hits[0].second));
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(static_cast<std::streamoff>(hits[0].second));
    f.write(&c, 1);
    f.flush();
    if (!f.good()) return Fail("cannot rewrite " + hits[0].first.string());
    std::fprintf(stderr, "upfs_corrupt: flipped byte %zu of %s\n", hits[0].second, hits[0].first.c_str());
  }
  std::printf("chunk %llu %llu\n", static_cast<unsigned long long>(chunk.begin),
              static_cast<unsigned long long>(chunk.begin + chunk.bytes.size()));
  return 0;
}

}  // namespace
}  // namespace upfs::store

int main(int argc, char** argv) { return upfs::store::Run(argc, argv); }
