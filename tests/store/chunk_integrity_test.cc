// Chunk integrity (G1, docs/semantics.md): every chunk's bytes are checked against the checksum in
// its extent record, and a committed blob has no holes. Damage is made in
// the blob files behind the store's back (as a failing disk, a bug in upfs
// or a tool editing the files would), so only upfs's checks can catch it.
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "tests/store/store_fixture.h"
#include "tests/support/status_assertions.h"

namespace upfs::store::testing {
namespace {

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 9));
  return s;
}

Status ReadInto(const ByteSink& sink, uint64_t offset, size_t n, std::string* out) {
  out->assign(n, '\x55');
  return sink.ReadAt(offset, n, out->data());
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEMPLATE_TEST_CASE("integrity: a chunk changed behind the store fails its checksum on every read",
                   "[store][integrity]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  const uint64_t blob = 41;
  const std::string data = Pattern(3 * kMaxChunkBytes, 'a');  // three full chunks
  auto sink = fx.store().OpenBlob(blob);
  REQUIRE_OK(sink->WriteAt(0, data));

  // Flip one byte of the middle chunk; its extent record stays.
  const uint64_t damaged = kMaxChunkBytes;
  std::string chunk(kMaxChunkBytes, '\0');
  size_t present = 0;
  REQUIRE_OK(fx.blobs().Read(blob, damaged, chunk.size(), chunk.data(), &present));
  REQUIRE(present == chunk.size());
  chunk[1234] ^= 0x01;
  REQUIRE_OK(fx.blobs().Write(blob, damaged + 1234, chunk.substr(1234, 1)));

  std::string out;
  for (const auto& reader : {fx.store().OpenBlob(blob), fx.store().OpenCommittedBlob(blob)}) {
    // Any read touching the chunk fails, naming the blob and its offset.
    for (auto [offset, n] : {std::pair<uint64_t, size_t>{damaged + 1234, 1},
                             {0, data.size()},
                             {damaged - 10, 20},
                             {damaged + kMaxChunkBytes - 1, 1}}) {
      INFO("read of " << n << " bytes at " << offset);
      Status st = ReadInto(*reader, offset, n, &out);
      REQUIRE(st.code() == Status::Code::kCorruption);
      CHECK(Contains(st.message(), "blob 41"));
      CHECK(Contains(st.message(), "offset " + std::to_string(damaged)));
      CHECK(Contains(st.message(), "checksum"));
    }
    // The chunks around it read back as written.
    REQUIRE_OK(ReadInto(*reader, 0, damaged, &out));
    CHECK(out == data.substr(0, damaged));
    REQUIRE_OK(ReadInto(*reader, 2 * kMaxChunkBytes, kMaxChunkBytes, &out));
    CHECK(out == data.substr(2 * kMaxChunkBytes));
  }
  // A write that keeps part of the damaged chunk refuses to re-checksum
  // the damaged bytes as if they were good, and stores nothing.
  Status st = sink->WriteAt(damaged + 10, "new");
  CHECK(st.code() == Status::Code::kCorruption);
  std::string after(kMaxChunkBytes, '\0');
  REQUIRE_OK(fx.blobs().Read(blob, damaged, after.size(), after.data(), &present));
  CHECK(after == chunk);
  // Rewriting the whole chunk replaces the damage with good bytes.
  REQUIRE_OK(sink->WriteAt(damaged, data.substr(damaged, kMaxChunkBytes)));
  REQUIRE_OK(ReadInto(*sink, 0, data.size(), &out));
  CHECK(out == data);
}

TEMPLATE_TEST_CASE(
    "integrity: a changed extent record, or one whose bytes are gone, fails the read",
    "[store][integrity]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  const uint64_t blob = 42;
  // Past kInlineChunkEnd, so the bytes are in the blob files.
  const uint64_t at = kInlineChunkEnd;
  const std::string data = Pattern(5000, 'k');
  auto sink = fx.store().OpenBlob(blob);
  REQUIRE_OK(sink->WriteAt(at, data.substr(0, 2000)));
  REQUIRE_OK(sink->WriteAt(at + 2000, data.substr(2000)));
  std::string out;

  SECTION("a checksum that is not the bytes'") {
    KvWrite w;
    w.Put(keys::Extent(blob, at + 2000),
          EncodeExtentValue(3000, ChunkChecksum(data.substr(2000)) ^ 1));
    REQUIRE_OK(fx.kv().Commit(w, true));
    Status st = ReadInto(*sink, at + 1990, 20, &out);
    CHECK(st.code() == Status::Code::kCorruption);
    CHECK(Contains(st.message(), "offset " + std::to_string(at + 2000)));
  }
  SECTION("bytes stored without an extent record stay invisible") {
    // What a crash between storing bytes and recording them leaves.
    REQUIRE_OK(fx.blobs().Write(blob, at + 7000, "stray"));
    REQUIRE_OK(ReadInto(*sink, at, 8000, &out));
    CHECK(out == data + std::string(3000, '\0'));
    std::vector<Extent> extents;
    REQUIRE_OK(sink->Extents(&extents));
    CHECK(extents == std::vector<Extent>{{at, at + 5000}});
  }
  SECTION("an extent record whose bytes are gone") {
    REQUIRE_OK(fx.blobs().Truncate(blob, at + 2000, at + 5000));
    Status st = ReadInto(*sink, at, 5000, &out);
    CHECK(st.code() == Status::Code::kCorruption);
    CHECK(Contains(st.message(), "offset " + std::to_string(at + 2000) +
                                     " (3000 bytes) is listed but only 0 of its bytes are stored"));
    REQUIRE_OK(ReadInto(*sink, at, 2000, &out));
    CHECK(out == data.substr(0, 2000));
  }
}

TEMPLATE_TEST_CASE(
    "integrity: a small chunk's bytes (in a pack, or inline) are checked against its checksum "
    "like any other",
    "[store][integrity]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  const uint64_t blob = 44;
  const std::string data = Pattern(5000, 'i');
  auto sink = fx.store().OpenBlob(blob);
  REQUIRE_OK(sink->WriteAt(0, data));
  // Nothing in the blob's own files: the bytes in a pack (where the blob
  // files can free a range), else in the record.
  std::map<uint64_t, uint64_t> stored;
  REQUIRE_OK(fx.blobs().List(&stored));
  CHECK(stored.count(blob) == 0);
  const bool packed = fx.blobs().CanPunch();
  std::string value;
  REQUIRE_OK(fx.kv().Get(keys::Extent(blob, 0), &value));
  CHECK(value.size() == (packed ? kPackedExtentValueSize : kExtentValueSize + data.size()));
  std::string out;
  REQUIRE_OK(ReadInto(*sink, 0, 5000, &out));
  CHECK(out == data);

  std::string damaged = value;
  SECTION("a byte changed") {
    if (packed) {
      // The byte in the pack.
      const PackedAt at = PackedAtOf(value);
      REQUIRE_OK(fx.blobs().Write(at.pack, at.offset + 100,
                                  std::string(1, static_cast<char>(data[100] ^ 1))));
    } else {
      damaged[kExtentValueSize + 100] ^= 1;
    }
  }
  SECTION("the checksum changed") { damaged[15] ^= 1; }
  KvWrite w;
  w.Put(keys::Extent(blob, 0), damaged);
  REQUIRE_OK(fx.kv().Commit(w, true));
  Status st = ReadInto(*sink, 90, 20, &out);
  CHECK(st.code() == Status::Code::kCorruption);
  CHECK(Contains(st.message(), "blob 44: chunk at offset 0 (5000 bytes) fails its checksum"));
  // A record whose length is not its bytes' does not decode.
  KvWrite torn;
  torn.Put(keys::Extent(blob, 0), value.substr(0, value.size() - 1));
  REQUIRE_OK(fx.kv().Commit(torn, true));
  st = ReadInto(*sink, 0, 10, &out);
  CHECK(st.code() == Status::Code::kCorruption);
  CHECK(Contains(st.message(), "malformed extent record for blob 44"));
}

TEMPLATE_TEST_CASE(
    "integrity: a committed blob's hole is corruption, a session blob's hole reads as zeros",
    "[store][integrity]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  const uint64_t blob = 43;
  auto sink = fx.store().OpenBlob(blob);
  REQUIRE_OK(sink->WriteAt(0, std::string(1000, 'x')));
  REQUIRE_OK(sink->WriteAt(3000, std::string(1000, 'y')));  // hole [1000, 3000)

  auto session = fx.store().OpenBlob(blob);
  auto committed = fx.store().OpenCommittedBlob(blob);
  std::string out;
  REQUIRE_OK(ReadInto(*session, 500, 3000, &out));
  CHECK(out == std::string(500, 'x') + std::string(2000, '\0') + std::string(500, 'y'));

  for (auto [offset, n] :
       {std::pair<uint64_t, size_t>{500, 3000}, {1000, 1}, {2999, 2}, {3500, 1000}}) {
    INFO("read of " << n << " bytes at " << offset);
    Status st = ReadInto(*committed, offset, n, &out);
    REQUIRE(st.code() == Status::Code::kCorruption);
    CHECK(Contains(st.message(), "blob 43"));
    CHECK(Contains(st.message(), "no chunk for bytes"));
  }
  // Covered ranges of the committed blob read normally.
  REQUIRE_OK(ReadInto(*committed, 0, 1000, &out));
  CHECK(out == std::string(1000, 'x'));
  REQUIRE_OK(ReadInto(*committed, 3000, 1000, &out));
  CHECK(out == std::string(1000, 'y'));
  // A blob with no chunk at all.
  Status st = ReadInto(*fx.store().OpenCommittedBlob(44), 0, 10, &out);
  CHECK(st.code() == Status::Code::kCorruption);
  REQUIRE_OK(ReadInto(*fx.store().OpenBlob(44), 0, 10, &out));
  CHECK(out == std::string(10, '\0'));
}

TEST_CASE("integrity: a store of format 1 (no chunk checksums) is refused with both versions",
          "[store][integrity]") {
  auto kv = std::make_unique<MemoryKv>();
  KvWrite w;
  w.Put(std::string(keys::kFormatKey), "upfs-store 1");
  REQUIRE(kv->Commit(w, true).ok());
  auto store = KvStore::Open(std::move(kv), std::make_unique<MemoryBlobFiles>(), /*create=*/true);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == Status::Code::kInvalidArgument);
  CHECK(Contains(store.status().message(), "'upfs-store 1'"));
  CHECK(Contains(store.status().message(), "'" + std::string(keys::kFormatValue) + "'"));
}

}  // namespace upfs::store::testing
