// KvStore against both backends: blob bytes at any offset and size, the
// chunk layout under overlapping rewrites, truncation and deletion in
// batches, record round trips, ids, and a randomized model check.
#include "store/kv_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "store/memory_kv.h"
#include "store/mount_lease.h"
#include "store/records.h"
#include "tests/store/store_fixture.h"
#include "tests/support/fake_lease.h"
#include "tests/support/random_bytes.h"
#include "tests/support/shared_kv.h"

namespace upfs::store::testing {
namespace {

using upfs::testing::FakeLease;
using upfs::testing::RandomBytes;
using upfs::testing::SharedKv;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// What a blob must hold: its bytes (zeros where nothing was written) and
// which of them were written.
class BlobModel {
 public:
  void Write(uint64_t offset, std::string_view data) {
    Grow(offset + data.size());
    std::copy(data.begin(), data.end(), bytes_.begin() + offset);
    std::fill(written_.begin() + offset, written_.begin() + offset + data.size(), 1);
  }
  void Truncate(uint64_t length) {
    if (length >= bytes_.size()) return;
    bytes_.resize(length);
    written_.resize(length);
  }
  std::string Range(uint64_t offset, size_t n) const {
    std::string out(n, '\0');
    for (size_t i = 0; i < n && offset + i < bytes_.size(); ++i) out[i] = bytes_[offset + i];
    return out;
  }
  std::vector<Extent> Extents() const {
    std::vector<Extent> out;
    for (uint64_t i = 0; i < written_.size(); ++i) {
      if (!written_[i]) continue;
      if (!out.empty() && out.back().end == i) {
        out.back().end = i + 1;
      } else {
        out.push_back({i, i + 1});
      }
    }
    return out;
  }
  uint64_t size() const { return bytes_.size(); }

 private:
  void Grow(uint64_t n) {
    if (n > bytes_.size()) {
      bytes_.resize(n, '\0');
      written_.resize(n, 0);
    }
  }
  std::string bytes_;
  std::vector<uint8_t> written_;
};

std::string Read(const ByteSink& sink, uint64_t offset, size_t n) {
  std::string out(n, '\x55');  // not zero: ReadAt must fill every byte
  Status st = sink.ReadAt(offset, n, out.data());
  INFO(st.ToString());
  REQUIRE(st.ok());
  return out;
}

std::vector<Extent> ExtentsOf(const ByteSink& sink) {
  std::vector<Extent> out{{1, 2}};  // ExtentsOf must replace, not append
  Status st = sink.Extents(&out);
  INFO(st.ToString());
  REQUIRE(st.ok());
  return out;
}

void Write(ByteSink& sink, uint64_t offset, std::string_view data) {
  Status st = sink.WriteAt(offset, data);
  INFO(st.ToString());
  REQUIRE(st.ok());
}

void Apply(Store& store, const Batch& batch, bool sync = false) {
  Status st = store.Apply(batch, sync);
  INFO(st.ToString());
  REQUIRE(st.ok());
}

// Compares everything observable about `blob` with the model: all its
// bytes (and some beyond), its extents, and the stored chunk layout.
void CheckBlob(StoreFixture& fx, uint64_t blob, const BlobModel& model) {
  auto sink = fx.store().OpenBlob(blob);
  REQUIRE(Read(*sink, 0, model.size() + 100) == model.Range(0, model.size() + 100));
  REQUIRE(ExtentsOf(*sink) == model.Extents());
  CheckChunkLayout(fx.kv(), fx.blobs(), blob);
}

struct OverlapPattern {
  const char* name;
  std::vector<std::pair<uint64_t, uint64_t>> writes;  // (offset, length), in order
};

std::vector<OverlapPattern> OverlapPatterns() {
  const uint64_t c = kMaxChunkBytes;
  return {
      {"inside", {{100, 100}, {120, 30}}},
      {"straddling the left edge", {{100, 100}, {50, 80}}},
      {"straddling the right edge", {{100, 100}, {180, 80}}},
      {"covering several chunks", {{0, 100}, {100, 100}, {200, 100}, {50, 200}}},
      {"covering several chunks exactly", {{0, 100}, {100, 100}, {200, 100}, {0, 300}}},
      {"covering chunks and the gaps between", {{100, 10}, {300, 10}, {500, 10}, {0, 1000}}},
      {"same start, longer", {{100, 100}, {100, 200}}},
      {"same start, shorter", {{100, 100}, {100, 50}}},
      {"same end, longer", {{100, 100}, {50, 150}}},
      {"same end, shorter", {{100, 100}, {150, 50}}},
      {"the same range", {{100, 100}, {100, 100}}},
      {"adjacent on both sides", {{100, 100}, {0, 100}, {200, 100}}},
      {"bridging a gap", {{0, 100}, {200, 100}, {50, 200}}},
      {"one byte in the middle", {{0, 1000}, {500, 1}}},
      {"across a split boundary of a large write", {{0, 2 * c + c / 2}, {c - 10, 20}}},
      {"a large write over many small ones", {{10, 1000}, {5000, 7}, {c + 3, 100}, {1, 2 * c}}},
      {"small writes into a large one, then a rewrite of all",
       {{0, 2 * c}, {c, 1}, {c - 1, 1}, {3, 5}, {0, 2 * c + 1}}},
  };
}

}  // namespace

TEMPLATE_TEST_CASE("blob: bytes written at any offset and size read back", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(1);
  const std::vector<uint64_t> sizes = {
      1, 7, 4096, kMaxChunkBytes - 1, kMaxChunkBytes, kMaxChunkBytes + 1, 2 * kMaxChunkBytes + 3};
  const std::vector<uint64_t> offsets = {0, 1, 4095, 3 * kMiB + 17, uint64_t{1} << 40};
  uint64_t blob = 100;
  for (uint64_t size : sizes) {
    for (uint64_t offset : offsets) {
      CAPTURE(size, offset);
      ++blob;
      auto sink = fx.store().OpenBlob(blob);
      std::string data = RandomBytes(rng, size);
      Write(*sink, offset, data);
      REQUIRE(Read(*sink, offset, size) == data);
      REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{offset, offset + size}});
      // Partial reads: a head, a tail, a middle, and one spanning the
      // written range with zeros on both sides.
      REQUIRE(Read(*sink, offset, size / 2) == data.substr(0, size / 2));
      REQUIRE(Read(*sink, offset + size / 3, size - size / 3) == data.substr(size / 3));
      if (size > 2) REQUIRE(Read(*sink, offset + 1, size - 2) == data.substr(1, size - 2));
      uint64_t before = std::min<uint64_t>(offset, 5);
      std::string around = Read(*sink, offset - before, before + size + 5);
      REQUIRE(around == std::string(before, '\0') + data + std::string(5, '\0'));
      CheckChunkLayout(fx.kv(), fx.blobs(), blob);
    }
  }
}

TEMPLATE_TEST_CASE("blob: gaps and never-written blobs read as zeros", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  auto sink = fx.store().OpenBlob(7);
  REQUIRE(Read(*sink, 0, 5000) == std::string(5000, '\0'));
  REQUIRE(ExtentsOf(*sink).empty());
  Write(*sink, 10, "0123456789");
  Write(*sink, 1000, "abcdefghij");
  BlobModel model;
  model.Write(10, "0123456789");
  model.Write(1000, "abcdefghij");
  REQUIRE(Read(*sink, 0, 2000) == model.Range(0, 2000));
  REQUIRE(Read(*sink, 20, 980) == std::string(980, '\0'));
  REQUIRE(Read(*sink, 15, 990) == "56789" + std::string(980, '\0') + "abcde");
  REQUIRE(Read(*sink, 5000, 100) == std::string(100, '\0'));
  REQUIRE(Read(*sink, kMaxBlobLength - 4, 100) == std::string(100, '\0'));
  REQUIRE(Read(*sink, 12, 0).empty());
  // Another blob's bytes never show through.
  REQUIRE(Read(*fx.store().OpenBlob(6), 0, 2000) == std::string(2000, '\0'));
  REQUIRE(Read(*fx.store().OpenBlob(8), 0, 2000) == std::string(2000, '\0'));
}

TEMPLATE_TEST_CASE(
    "blob: bytes the blob files hold where no record is read as zeros, by reads of any alignment",
    "[store]", UPFS_STORE_BACKENDS) {
  // A read whose chunks lie within it takes their bytes straight into the
  // caller's buffer, in one read from the first chunk's start to the last
  // one's end: what lies between them in the blob files (bytes of a write
  // that failed, or of an overwrite dropped after one) must not show.
  StoreFixture fx(TestType::kBackend);
  const uint64_t blob = 9;
  auto sink = fx.store().OpenBlob(blob);
  const std::string a(kMaxChunkBytes, 'a'), b(10, 'b');
  Write(*sink, 0, "inline");
  Write(*sink, kMaxChunkBytes, a);
  Write(*sink, 3 * kMaxChunkBytes, b);
  REQUIRE(fx.blobs().Write(blob, 2 * kMaxChunkBytes, std::string(5000, 'X')).ok());
  REQUIRE(fx.blobs().Write(blob, 3 * kMaxChunkBytes + 10, std::string(5000, 'Y')).ok());
  BlobModel model;
  model.Write(0, "inline");
  model.Write(kMaxChunkBytes, a);
  model.Write(3 * kMaxChunkBytes, b);
  const uint64_t size = 4 * kMaxChunkBytes;
  for (auto [offset, n] : {std::pair<uint64_t, size_t>{0, size},
                           {kMaxChunkBytes, 3 * kMaxChunkBytes},
                           {kMaxChunkBytes - 1, 2 * kMaxChunkBytes + 2},
                           {2 * kMaxChunkBytes, kMaxChunkBytes + 20},
                           {kMaxChunkBytes + 7, 3 * kMaxChunkBytes}}) {
    INFO("read of " << n << " bytes at " << offset);
    CHECK(Read(*sink, offset, n) == model.Range(offset, n));
  }
}

TEMPLATE_TEST_CASE("blob: empty and out-of-range writes", "[store]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  auto sink = fx.store().OpenBlob(9);
  Write(*sink, 100, "");
  REQUIRE(ExtentsOf(*sink).empty());
  Write(*sink, kMaxBlobLength - 3, "xyz");  // ends exactly at the limit
  REQUIRE(Read(*sink, kMaxBlobLength - 3, 3) == "xyz");
  Status st = sink->WriteAt(kMaxBlobLength - 2, "xyz");
  REQUIRE(st.code() == Status::Code::kTooLarge);
  st = sink->WriteAt(kMaxBlobLength, "a");
  REQUIRE(st.code() == Status::Code::kTooLarge);
  REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{kMaxBlobLength - 3, kMaxBlobLength}});
  REQUIRE(Read(*sink, kMaxBlobLength - 3, 3) == "xyz");
}

TEMPLATE_TEST_CASE("blob: overlapping rewrites leave the latest bytes and no overlapping chunks",
                   "[store]", UPFS_STORE_BACKENDS) {
  auto pattern = GENERATE(from_range(OverlapPatterns()));
  CAPTURE(pattern.name);
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(2);
  BlobModel model;
  auto sink = fx.store().OpenBlob(42);
  std::set<uint64_t> points = {0};
  for (auto [offset, length] : pattern.writes) {
    std::string data = RandomBytes(rng, length);
    Write(*sink, offset, data);
    model.Write(offset, data);
    CheckBlob(fx, 42, model);
    for (uint64_t p : {offset, offset + length}) {
      points.insert(p);
      points.insert(p + 1);
      if (p > 0) points.insert(p - 1);
    }
  }
  points.insert(model.size() + 10);
  // Reads between every pair of interesting offsets (short ones; the
  // whole blob was compared above).
  for (auto a = points.begin(); a != points.end(); ++a) {
    for (auto b = std::next(a); b != points.end(); ++b) {
      uint64_t n = *b - *a;
      if (n > 256 * 1024) continue;
      CAPTURE(*a, n);
      REQUIRE(Read(*sink, *a, n) == model.Range(*a, n));
    }
  }
}

// Where each chunk of `blob` keeps its bytes: offset -> 'i' (inline), 'p'
// (in a pack) or 'b' (the blob files).
std::map<uint64_t, char> ChunkPlaces(const Kv& kv, uint64_t blob) {
  std::map<uint64_t, char> out;
  Status st = kv.Scan(keys::Extent(blob, 0), keys::Extent(blob + 1, 0),
                      [&](std::string_view k, std::string_view v) {
                        if (keys::IsBlobEnd(k)) return true;
                        uint64_t length = 0, checksum = 0;
                        std::optional<std::string_view> bytes;
                        std::optional<PackedAt> packed;
                        REQUIRE(DecodeExtentValue(v, &length, &checksum, &bytes, &packed));
                        out[keys::OffsetOf(k)] = bytes ? 'i' : packed ? 'p' : 'b';
                        return true;
                      });
  REQUIRE(st.ok());
  return out;
}

// The pack a packed chunk of `blob` at `offset` is in.
uint64_t PackOf(const Kv& kv, uint64_t blob, uint64_t offset) {
  std::string v;
  REQUIRE(kv.Get(keys::Extent(blob, offset), &v).ok());
  uint64_t length = 0, checksum = 0;
  std::optional<std::string_view> bytes;
  std::optional<PackedAt> packed;
  REQUIRE(DecodeExtentValue(v, &length, &checksum, &bytes, &packed));
  REQUIRE(packed);
  return packed->pack;
}

TEMPLATE_TEST_CASE(
    "small writes: writes ending within kInlineChunkEnd go to a pack (inline where the blob files "
    "cannot free a range), kept parts of packed chunks go inline, of others stay where they were",
    "[store][inline][pack]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(5);
  BlobModel model;
  const uint64_t blob = 50;
  auto sink = fx.store().OpenBlob(blob);
  auto write = [&](uint64_t offset, uint64_t length) {
    std::string data = RandomBytes(rng, length);
    Write(*sink, offset, data);
    model.Write(offset, data);
    CheckBlob(fx, blob, model);
  };
  auto blob_file_bytes = [&] {
    std::map<uint64_t, uint64_t> stored;
    REQUIRE(fx.blobs().List(&stored).ok());
    return stored.count(blob) ? stored[blob] : 0;
  };
  // A small write's place: a pack where the blob files can free its
  // pages again (a directory, memory), inline otherwise (RADOS).
  const char s = fx.blobs().CanPunch() ? 'p' : 'i';

  // A small file: one chunk, nothing in the blob's own files.
  write(0, 10000);
  CHECK(ChunkPlaces(fx.kv(), blob) == std::map<uint64_t, char>{{0, s}});
  CHECK(blob_file_bytes() == 0);
  // Up to the limit exactly: small.
  write(kInlineChunkEnd - 1000, 1000);
  CHECK(ChunkPlaces(fx.kv(), blob) ==
        std::map<uint64_t, char>{{0, s}, {kInlineChunkEnd - 1000, s}});
  // An overwrite inside a small chunk splits it; the parts kept go inline.
  write(4000, 1000);
  CHECK(ChunkPlaces(fx.kv(), blob) ==
        std::map<uint64_t, char>{{0, 'i'}, {4000, s}, {5000, 'i'}, {kInlineChunkEnd - 1000, s}});
  CHECK(blob_file_bytes() == 0);
  // A write past the limit goes to the blob files, even where it starts
  // below it; the inline head it cuts stays inline.
  write(2000, kInlineChunkEnd);
  CHECK(ChunkPlaces(fx.kv(), blob) == std::map<uint64_t, char>{{0, 'i'}, {2000, 'b'}});
  CHECK(blob_file_bytes() > 0);
  // And a small write over a blob-file chunk: small, the parts around it
  // stay in the blob files.
  write(3000, 100);
  CHECK(ChunkPlaces(fx.kv(), blob) ==
        std::map<uint64_t, char>{{0, 'i'}, {2000, 'b'}, {3000, s}, {3100, 'b'}});
  // Truncating inside an inline chunk keeps its head inline.
  Batch truncate;
  truncate.Truncate(blob, 1500);
  Apply(fx.store(), truncate);
  model.Truncate(1500);
  CheckBlob(fx, blob, model);
  CHECK(ChunkPlaces(fx.kv(), blob) == std::map<uint64_t, char>{{0, 'i'}});
  // Deleted: no record left, and no blob file.
  Batch del;
  del.DeleteBlobData(blob);
  Apply(fx.store(), del);
  CHECK(ChunkPlaces(fx.kv(), blob).empty());
  CHECK(blob_file_bytes() == 0);
}

TEMPLATE_TEST_CASE(
    "packs: small files share a pack, each freed chunk gives its pages back, and a full pack "
    "left empty goes with its record",
    "[store][pack]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  if (!fx.blobs().CanPunch()) return;  // RADOS: small files stay inline (the test above)
  std::mt19937_64 rng(6);
  auto pack_bytes = [&](uint64_t pack) {
    Result<uint64_t> bytes = fx.blobs().StoredBytes(pack);
    REQUIRE(bytes.ok());
    return *bytes;
  };
  auto has_record = [&](uint64_t pack) {
    std::string v;
    Status got = fx.kv().Get(keys::Pack(pack), &v);
    REQUIRE((got.ok() || got.IsNotFound()));
    return got.ok();
  };
  // Small files, each written whole, as cp writes them; as large as a
  // small file gets, so each holds whole pages of MemoryBlobFiles too.
  const uint64_t kFileBytes = kInlineChunkEnd;
  std::map<uint64_t, std::string> files;
  auto write_file = [&](uint64_t blob) {
    files[blob] = RandomBytes(rng, kFileBytes);
    Write(*fx.store().OpenBlob(blob), 0, files[blob]);
  };
  auto delete_file = [&](uint64_t blob) {
    Batch del;
    del.DeleteBlobData(blob);
    Apply(fx.store(), del);
    files.erase(blob);
  };
  auto check_files = [&] {
    for (const auto& [blob, data] : files) {
      CAPTURE(blob);
      REQUIRE(Read(*fx.store().OpenBlob(blob), 0, data.size()) == data);
    }
  };
  for (uint64_t b = 1000; b < 1003; ++b) write_file(b);
  const uint64_t first = PackOf(fx.kv(), 1000, 0);
  CHECK(PackOf(fx.kv(), 1001, 0) == first);
  CHECK(PackOf(fx.kv(), 1002, 0) == first);
  CHECK(has_record(first));
  CHECK(ChunkPlaces(fx.kv(), 1001) == std::map<uint64_t, char>{{0, 'p'}});
  const uint64_t three = pack_bytes(first);
  CHECK(three >= 3 * kFileBytes);
  // A file deleted gives its pages back; the others read as written.
  delete_file(1000);
  CHECK(pack_bytes(first) < three);
  check_files();
  // An overwrite of part of a packed file: the parts kept go inline, the
  // chunk's pages are freed.
  {
    std::string part = RandomBytes(rng, 100);
    Write(*fx.store().OpenBlob(1002), 500, part);
    files[1002].replace(500, 100, part);
  }
  CHECK(ChunkPlaces(fx.kv(), 1002) == std::map<uint64_t, char>{{0, 'i'}, {500, 'p'}, {600, 'i'}});
  check_files();
  // Enough files to fill the first pack and start a second.
  uint64_t next = 2000;
  while (PackOf(fx.kv(), next - 1 < 2000 ? 1001 : next - 1, 0) == first) write_file(next++);
  const uint64_t second = PackOf(fx.kv(), next - 1, 0);
  CHECK(second != first);
  // 3 files and the 100 bytes before: 1020 more fit, the next one starts
  // the second pack.
  CHECK(next - 2000 == kPackBytes / kFileBytes - 3);
  check_files();
  // Every chunk in the first pack deleted or moved: it goes, file and record.
  delete_file(1001);
  delete_file(1002);
  for (uint64_t b = 2000; b < next - 1; ++b) delete_file(b);
  CHECK(pack_bytes(first) == 0);
  CHECK_FALSE(has_record(first));
  // The second (current) pack holds its one file.
  CHECK(has_record(second));
  CHECK(pack_bytes(second) >= kFileBytes);
  check_files();
}

TEMPLATE_TEST_CASE("blob: extents are sorted and merged", "[store]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  auto sink = fx.store().OpenBlob(5);
  Write(*sink, 10, std::string(10, 'b'));
  Write(*sink, 0, std::string(10, 'a'));
  Write(*sink, 20, std::string(10, 'c'));
  REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{0, 30}});
  Write(*sink, 40, std::string(10, 'e'));
  REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{0, 30}, {40, 50}});
  Write(*sink, 100, std::string(3 * kMaxChunkBytes, 'f'));  // split into chunks, one extent
  REQUIRE(ExtentsOf(*sink) ==
          std::vector<Extent>{{0, 30}, {40, 50}, {100, 100 + 3 * kMaxChunkBytes}});
  Write(*sink, 30, std::string(10, 'd'));
  REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{0, 50}, {100, 100 + 3 * kMaxChunkBytes}});
  Write(*sink, 45, std::string(60, 'g'));  // overlaps both extents
  REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{0, 100 + 3 * kMaxChunkBytes}});
  REQUIRE(Read(*sink, 0, 50) == std::string(10, 'a') + std::string(10, 'b') + std::string(10, 'c') +
                                    std::string(10, 'd') + std::string(5, 'e') +
                                    std::string(5, 'g'));
}

TEMPLATE_TEST_CASE("blob: writes larger than kMaxChunkBytes are split", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(3);
  std::string data = RandomBytes(rng, 2 * kMaxChunkBytes + kMaxChunkBytes / 2);
  auto sink = fx.store().OpenBlob(11);
  Write(*sink, 7, data);
  auto chunks = ExtentRecords(fx.kv(), fx.blobs(), 11);
  REQUIRE(chunks ==
          std::vector<std::pair<uint64_t, uint64_t>>{{7, kMaxChunkBytes},
                                                     {7 + kMaxChunkBytes, kMaxChunkBytes},
                                                     {7 + 2 * kMaxChunkBytes, kMaxChunkBytes / 2}});
  CheckChunkLayout(fx.kv(), fx.blobs(), 11);
  REQUIRE(Read(*sink, 7, data.size()) == data);
  REQUIRE(Read(*sink, 7 + kMaxChunkBytes - 3, 6) == data.substr(kMaxChunkBytes - 3, 6));
  REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{7, 7 + data.size()}});
}

TEMPLATE_TEST_CASE("batch: Truncate drops the bytes at and after the length", "[store]",
                   UPFS_STORE_BACKENDS) {
  const uint64_t c = kMaxChunkBytes;
  auto length = GENERATE_COPY(values<uint64_t>(
      {0, 1, 999, 1000, 1001, c - 1, c, c + 1, 2 * c + 4999, 2 * c + 5000, 5 * c}));
  CAPTURE(length);
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(4);
  BlobModel model;
  auto sink = fx.store().OpenBlob(12);
  // A large split write, then a small chunk after a gap.
  std::string big = RandomBytes(rng, 2 * c);
  std::string tail = RandomBytes(rng, 1000);
  Write(*sink, 0, big);
  Write(*sink, 2 * c + 4000, tail);
  model.Write(0, big);
  model.Write(2 * c + 4000, tail);
  // A neighbouring blob must not be touched.
  auto other = fx.store().OpenBlob(13);
  Write(*other, 0, "neighbour");

  Batch batch;
  batch.Truncate(12, length);
  Apply(fx.store(), batch);
  model.Truncate(length);
  CheckBlob(fx, 12, model);
  REQUIRE(Read(*other, 0, 9) == "neighbour");

  // Writing after a truncate extends the blob again.
  std::string more = RandomBytes(rng, 300);
  Write(*sink, length + 50, more);
  model.Write(length + 50, more);
  CheckBlob(fx, 12, model);
}

TEMPLATE_TEST_CASE("batch: DeleteBlob frees one blob and no other", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(5);
  // 255 and 256 differ in their last two key bytes: a prefix bug would
  // show here.
  const std::vector<uint64_t> blobs = {254, 255, 256, 257, 0x1ff, 0x200};
  std::map<uint64_t, std::string> data;
  for (uint64_t b : blobs) {
    data[b] = RandomBytes(rng, kMaxChunkBytes + 100 + b);
    Write(*fx.store().OpenBlob(b), 10, data[b]);
  }
  Batch batch;
  batch.DeleteBlobData(255);
  batch.DeleteBlobData(0x200);
  Apply(fx.store(), batch);
  for (uint64_t b : blobs) {
    CAPTURE(b);
    auto sink = fx.store().OpenBlob(b);
    if (b == 255 || b == 0x200) {
      REQUIRE(ExtentsOf(*sink).empty());
      REQUIRE(ExtentRecords(fx.kv(), fx.blobs(), b).empty());
      std::map<uint64_t, uint64_t> stored;
      REQUIRE(fx.blobs().List(&stored).ok());
      REQUIRE(stored.count(b) == 0);  // its bytes are freed, not only unlisted
      REQUIRE(Read(*sink, 0, 200) == std::string(200, '\0'));
    } else {
      REQUIRE(Read(*sink, 10, data[b].size()) == data[b]);
      REQUIRE(ExtentsOf(*sink) == std::vector<Extent>{{10, 10 + data[b].size()}});
    }
  }
}

// ByteSink promises reads from one consistent snapshot: a read racing a
// rewrite returns the old bytes or the new ones, never a mix, zeros or a
// checksum failure (bytes stored, records not yet). A writer thread keeps
// rewriting one range with chunks that start at different offsets.
TEMPLATE_TEST_CASE("blob: a read racing a rewrite returns old or new bytes, never zeros", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  auto writer = fx.store().OpenBlob(3);
  Write(*writer, 0, std::string(1000, 'A'));
  Write(*writer, 100, std::string(800, 'B'));  // chunks at 0, 100 and 900
  std::atomic<bool> stop = false;
  std::thread rewrites([&] {
    for (int i = 0; !stop; ++i) {
      Status st = i % 2 ? writer->WriteAt(100, std::string(800, 'B'))
                        : writer->WriteAt(50, std::string(900, 'C'));
      if (!st.ok()) FAIL_CHECK(st.ToString());
    }
  });
  auto reader = fx.store().OpenBlob(3);
  size_t reads = 0;
  for (; reads < 3000; ++reads) {
    std::string got(64, '\x55');
    Status st = reader->ReadAt(150, got.size(), got.data());
    if (!st.ok() || (got != std::string(64, 'B') && got != std::string(64, 'C'))) {
      std::replace(got.begin(), got.end(), '\0', '0');
      FAIL_CHECK("read " << reads << ": " << st.ToString() << " '" << got << "'");
      break;
    }
  }
  stop = true;
  rewrites.join();
  REQUIRE(reads == 3000);
}

// Not run by ctest (hidden tag); run with: upfs_store_tests "[perf]".
// Small rewrites of one range leave a version of the same keys per write
// in LevelDB's memtable; every later write and read of that range must not
// pay for all of them.
TEST_CASE("blob: rewriting one small range many times stays fast (LevelDB)", "[.][perf]") {
  StoreFixture fx(Backend::kLevelDb);
  auto sink = fx.store().OpenBlob(3);
  Write(*sink, 0, std::string(1000, 'A'));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3000; ++i) Write(*sink, 100, std::string(800, i % 2 ? 'B' : 'A'));
  double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) Read(*sink, 144, 64);
  double read_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      100;
  INFO("3000 rewrites of 800 bytes took " << write_s << " s; then a 64-byte read took " << read_ms
                                          << " ms");
  CHECK(write_s < 3.0);
  CHECK(read_ms < 1.0);
}

// ---- records ----

namespace {

auto Tie(const SessionRecord& r) {
  return std::tie(r.id, r.name, r.uid, r.gid, r.mode, r.created_ns, r.mtime_ns, r.write_once,
                  r.xattrs, r.atime_ns, r.ctime_ns);
}
auto Tie(const NodeRecord& r) {
  return std::tie(r.id, r.parent, r.name, r.is_dir, r.mode, r.uid, r.gid, r.mtime_ns, r.length,
                  r.xattrs, r.atime_ns, r.ctime_ns);
}
auto Tie(const AssetRecord& r) {
  return std::tie(r.name, r.root_id, r.uid, r.gid, r.mode, r.mtime_ns, r.committed_ns, r.files,
                  r.bytes, r.xattrs, r.atime_ns, r.ctime_ns, r.subdirs);
}
auto Tie(const AssetEntry& e) {
  return std::tie(e.asset, e.dir, e.name, e.id, e.is_dir, e.mode, e.uid, e.gid, e.mtime_ns,
                  e.length, e.sha256, e.xattrs, e.atime_ns, e.ctime_ns, e.subdirs);
}

SessionRecord MakeSession(uint64_t id, std::string name) {
  SessionRecord r;
  r.id = id;
  r.name = std::move(name);
  r.uid = UINT32_MAX;
  r.gid = 1000;
  r.mode = 0750;
  r.created_ns = -5;  // before 1970 must survive
  r.mtime_ns = INT64_MAX;
  r.atime_ns = -7;
  r.ctime_ns = 42;
  r.write_once = true;
  r.xattrs = {{"user.a", std::string("bin\0ary\xff", 8)}, {"user.empty", ""}};
  return r;
}

NodeRecord MakeNode(uint64_t id, uint64_t parent, std::string name, bool is_dir) {
  NodeRecord r;
  r.id = id;
  r.parent = parent;
  r.name = std::move(name);
  r.is_dir = is_dir;
  r.mode = is_dir ? 0755 : 0600;
  r.uid = 12;
  r.gid = 34;
  r.mtime_ns = 1'700'000'000'123'456'789;
  r.atime_ns = 3;
  r.ctime_ns = 1'700'000'000'123'456'790;
  r.length = is_dir ? 0 : (uint64_t{1} << 61) + 3;
  r.xattrs = {{"user.k", "v"}};
  return r;
}

AssetEntry MakeEntry(std::string asset, std::string dir, std::string name, uint64_t id,
                     bool is_dir) {
  AssetEntry e;
  e.asset = std::move(asset);
  e.dir = std::move(dir);
  e.name = std::move(name);
  e.id = id;
  e.is_dir = is_dir;
  e.mode = 0640;
  e.uid = 7;
  e.gid = 8;
  e.mtime_ns = 99;
  e.atime_ns = 98;
  e.ctime_ns = 100;
  e.subdirs = is_dir ? id % 5 : 0;
  e.length = is_dir ? 0 : id * 3;
  e.sha256 = is_dir ? "" : std::string(64, 'a' + static_cast<char>(id % 6));
  e.xattrs = {{"user.origin", e.name}};
  return e;
}

}  // namespace

TEMPLATE_TEST_CASE("records: sessions and nodes round-trip and delete", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  SessionRecord s1 = MakeSession(100, "zeta");
  SessionRecord s2 = MakeSession(356, "alpha \xc3\xa9 / odd\nname");
  s2.write_once = false;
  s2.xattrs.clear();
  Batch batch;
  batch.Create(s1);
  batch.Create(s2);
  // Session 100 and session 356 (= 100 + 256) share their low key byte.
  NodeRecord n1 = MakeNode(101, 100, "f", false);
  NodeRecord n2 = MakeNode(102, 100, "d", true);
  NodeRecord n3 = MakeNode(103, 102, "g", false);
  NodeRecord other = MakeNode(357, 356, "f", false);
  batch.Put(100, n3);
  batch.Put(100, n1);
  batch.Put(100, n2);
  batch.Put(356, other);
  Apply(fx.store(), batch);

  std::vector<SessionRecord> sessions;
  REQUIRE(fx.store().ListSessions(&sessions).ok());
  REQUIRE(sessions.size() == 2);
  // Ordered by name.
  REQUIRE(Tie(sessions[0]) == Tie(s2));
  REQUIRE(Tie(sessions[1]) == Tie(s1));

  std::vector<NodeRecord> nodes;
  REQUIRE(fx.store().ListNodes(100, &nodes).ok());
  REQUIRE(nodes.size() == 3);
  REQUIRE(Tie(nodes[0]) == Tie(n1));  // ordered by id
  REQUIRE(Tie(nodes[1]) == Tie(n2));
  REQUIRE(Tie(nodes[2]) == Tie(n3));
  REQUIRE(fx.store().ListNodes(356, &nodes).ok());
  REQUIRE(nodes.size() == 1);
  REQUIRE(Tie(nodes[0]) == Tie(other));
  REQUIRE(fx.store().ListNodes(999, &nodes).ok());
  REQUIRE(nodes.empty());

  // Updates replace, deletes remove.
  n1.length = 5;
  n1.name = "renamed";
  Batch update;
  update.Put(100, n1);
  update.DeleteNodeRecord(100, 102);
  update.Delete(s2);
  Apply(fx.store(), update, /*sync=*/true);
  REQUIRE(fx.store().ListSessions(&sessions).ok());
  REQUIRE(sessions.size() == 1);
  REQUIRE(sessions[0].name == "zeta");
  REQUIRE(fx.store().ListNodes(100, &nodes).ok());
  REQUIRE(nodes.size() == 2);
  REQUIRE(Tie(nodes[0]) == Tie(n1));
  REQUIRE(Tie(nodes[1]) == Tie(n3));
}

TEMPLATE_TEST_CASE("records: assets, entries and id locations round-trip", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  AssetRecord a;
  a.name = "a";
  a.root_id = 500;
  a.uid = 1;
  a.gid = 2;
  a.mode = 0700;
  a.mtime_ns = 3;
  a.committed_ns = 4;
  a.files = 4;
  a.bytes = uint64_t{1} << 40;
  a.xattrs = {{"user.x", "y"}};
  AssetRecord ab = a;
  ab.name = "ab";
  ab.root_id = 600;
  ab.xattrs.clear();
  std::vector<AssetEntry> entries = {
      MakeEntry("a", "", "f1", 501, false),  MakeEntry("a", "", "d", 502, true),
      MakeEntry("a", "d", "g", 503, false),  MakeEntry("a", "d/e", "h", 504, false),
      MakeEntry("a", "d2", "x", 505, false), MakeEntry("a", "d", "e", 506, true),
      MakeEntry("ab", "", "f1", 601, false), MakeEntry("a", "", "d2", 507, true),
  };
  Batch batch;
  batch.Put(ab);
  batch.Put(a);
  for (const AssetEntry& e : entries) batch.Put(e);
  Apply(fx.store(), batch, /*sync=*/true);

  AssetRecord got;
  REQUIRE(fx.store().GetAsset("a", &got).ok());
  REQUIRE(Tie(got) == Tie(a));
  REQUIRE(fx.store().GetAsset("zz", &got).IsNotFound());
  REQUIRE(fx.store().GetAsset("", &got).IsNotFound());
  std::vector<AssetRecord> assets;
  REQUIRE(fx.store().ListAssets(&assets).ok());
  REQUIRE(assets.size() == 2);
  REQUIRE(Tie(assets[0]) == Tie(a));
  REQUIRE(Tie(assets[1]) == Tie(ab));

  for (const AssetEntry& e : entries) {
    CAPTURE(e.Path());
    AssetEntry g;
    REQUIRE(fx.store().GetAssetEntry(e.asset, e.dir, e.name, &g).ok());
    REQUIRE(Tie(g) == Tie(e));
    AssetLocation loc;
    REQUIRE(fx.store().LocateId(e.id, &loc).ok());
    REQUIRE(loc.asset == e.asset);
    REQUIRE(loc.dir == e.dir);
    REQUIRE(loc.name == e.name);
    REQUIRE(!loc.is_root());
  }
  AssetEntry missing;
  REQUIRE(fx.store().GetAssetEntry("a", "d", "nope", &missing).IsNotFound());
  REQUIRE(fx.store().GetAssetEntry("a", "", "g", &missing).IsNotFound());  // g lives in d
  REQUIRE(fx.store().GetAssetEntry("b", "", "f1", &missing).IsNotFound());

  auto names = [&](std::string_view asset, std::string_view dir) {
    std::vector<AssetEntry> list;
    REQUIRE(fx.store().ListAssetDir(asset, dir, &list).ok());
    std::vector<std::string> out;
    for (const AssetEntry& e : list) {
      REQUIRE(e.asset == asset);
      REQUIRE(e.dir == dir);
      out.push_back(e.name);
    }
    return out;
  };
  REQUIRE(names("a", "") == std::vector<std::string>{"d", "d2", "f1"});
  REQUIRE(names("a", "d") == std::vector<std::string>{"e", "g"});
  REQUIRE(names("a", "d/e") == std::vector<std::string>{"h"});
  REQUIRE(names("a", "d2") == std::vector<std::string>{"x"});
  REQUIRE(names("ab", "") == std::vector<std::string>{"f1"});
  REQUIRE(names("a", "nope").empty());
  REQUIRE(names("abc", "").empty());

  AssetLocation loc;
  REQUIRE(fx.store().LocateId(500, &loc).ok());
  REQUIRE(loc.is_root());
  REQUIRE(loc.asset == "a");
  REQUIRE(fx.store().LocateId(600, &loc).ok());
  REQUIRE(loc.asset == "ab");
  REQUIRE(fx.store().LocateId(999, &loc).IsNotFound());
}

TEMPLATE_TEST_CASE("ids: NewIds hands out consecutive fresh ranges", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  uint64_t first = fx.store().NewIds(3).value();
  REQUIRE(first > 3);  // 1-3 are the mount's fixed directories
  uint64_t second = fx.store().NewIds(1).value();
  REQUIRE(second == first + 3);
  REQUIRE(fx.store().NewIds(10).value() == second + 1);
  REQUIRE(fx.store().NewIds(1).value() == second + 11);
}

TEST_CASE("ids: NewIds persists across reopen (LevelDB)", "[store]") {
  StoreFixture fx(Backend::kLevelDb);
  uint64_t first = fx.store().NewIds(10).value();
  // The counter is persisted with the next Apply, as records using the
  // ids are.
  Apply(fx.store(), Batch{}, /*sync=*/true);
  fx.Reopen();
  uint64_t after = fx.store().NewIds(1).value();
  REQUIRE(after >= first + 10);
  // And again, with records and blob bytes that must survive too.
  Batch batch;
  batch.Put(MakeSession(after, "s"));
  batch.Put(after, MakeNode(after + 1, after, "f", false));
  uint64_t more = fx.store().NewIds(2).value();
  Apply(fx.store(), batch, /*sync=*/true);
  Write(*fx.store().OpenBlob(more), 3, "persisted");
  fx.Reopen();
  REQUIRE(fx.store().NewIds(1).value() >= more + 2);
  std::vector<SessionRecord> sessions;
  REQUIRE(fx.store().ListSessions(&sessions).ok());
  REQUIRE(sessions.size() == 1);
  REQUIRE(Tie(sessions[0]) == Tie(MakeSession(after, "s")));
  REQUIRE(Read(*fx.store().OpenBlob(more), 0, 12) == std::string(3, '\0') + "persisted");
}

TEMPLATE_TEST_CASE("blob: random writes and truncates match a byte model", "[store]",
                   UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  std::mt19937_64 rng(20240601);
  const uint64_t span = 2 * kMaxChunkBytes + kMaxChunkBytes / 2;
  BlobModel model;
  auto sink = fx.store().OpenBlob(77);
  for (int op = 0; op < 150; ++op) {
    CAPTURE(op);
    uint64_t kind = rng() % 10;
    if (kind == 0) {
      uint64_t length = rng() % (span + 1);
      CAPTURE(length);
      Batch batch;
      batch.Truncate(77, length);
      Apply(fx.store(), batch);
      model.Truncate(length);
    } else {
      uint64_t offset = rng() % span;
      if (rng() % 4 == 0) offset &= ~uint64_t{4095};  // page-aligned, as the kernel writes
      uint64_t max_len = kind <= 2 ? kMaxChunkBytes + kMaxChunkBytes / 2 : 8192;
      uint64_t length = 1 + rng() % max_len;
      CAPTURE(offset, length);
      std::string data = RandomBytes(rng, length);
      Write(*sink, offset, data);
      model.Write(offset, data);
    }
    CheckBlob(fx, 77, model);
    uint64_t at = rng() % (model.size() + 1);
    size_t n = rng() % 70000;
    CAPTURE(at, n);
    REQUIRE(Read(*sink, at, n) == model.Range(at, n));
  }
}

// A Kv that counts the reads KvStore makes of it.
class CountingKv : public MemoryKv {
 public:
  Status Get(std::string_view key, std::string* value) const override {
    ++gets;
    return MemoryKv::Get(key, value);
  }
  Status Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const override {
    ++scans;
    if (!begin.empty() && begin[0] == keys::kReaderTag) ++reader_scans;
    return MemoryKv::Scan(begin, end, visit);
  }
  mutable std::atomic<int> gets{0};
  mutable std::atomic<int> scans{0};
  mutable std::atomic<int> reader_scans{0};  // of reader records ("O")
};

// A committed file never changes, so a handle on it reads its extent
// records a span at a time instead of at every read (on RADOS, two omap
// reads per window that cost the OSD more than the bytes).
TEST_CASE("blob: a committed blob's reader fetches its records once per span, not per read",
          "[store]") {
  auto kv_ptr = std::make_unique<CountingKv>();
  CountingKv& kv = *kv_ptr;
  auto opened =
      KvStore::Open(std::move(kv_ptr), std::make_unique<MemoryBlobFiles>(), /*create=*/true);
  REQUIRE(opened.ok());
  KvStore& store = **opened;
  std::mt19937_64 rng(23);
  const std::string data = RandomBytes(rng, 8 * kMiB);
  // Blob 1 in 1 MiB chunks; blob 2 in 2 KiB chunks (4096 records).
  for (uint64_t at = 0; at < data.size(); at += kMiB)
    Write(*store.OpenBlob(1), at, std::string_view(data).substr(at, kMiB));
  auto small = store.OpenBlob(2);
  for (uint64_t at = 0; at < data.size(); at += 2048)
    Write(*small, at, std::string_view(data).substr(at, 2048));

  auto committed = store.OpenCommittedBlob(1);
  kv.gets = 0;
  kv.scans = 0;
  for (uint64_t at = 0; at < data.size(); at += kMiB)
    REQUIRE(Read(*committed, at, kMiB) == data.substr(at, kMiB));
  CHECK(kv.gets == 1);   // the end record
  CHECK(kv.scans == 1);  // the 8 records, within one span
  // A span holds at most CommittedRecords::kMaxRecords (1024) records past
  // a read's own: 4096 records of 2 KiB chunks in 3 scans.
  committed = store.OpenCommittedBlob(2);
  kv.gets = 0;
  kv.scans = 0;
  for (uint64_t at = 0; at < data.size(); at += kMiB)
    REQUIRE(Read(*committed, at, kMiB) == data.substr(at, kMiB));
  CHECK(kv.gets == 1);
  CHECK(kv.scans == 3);
  // Reads that go back, or cross a span's end, still get the right bytes.
  for (uint64_t at :
       {uint64_t{7 * kMiB - 3000}, uint64_t{100}, uint64_t{4 * kMiB - 1}, uint64_t{0}}) {
    CAPTURE(at);
    REQUIRE(Read(*committed, at, 5000) == data.substr(at, 5000));
  }
  // A session blob's reads see every write, so they are never cached.
  auto session = store.OpenBlob(1);
  kv.scans = 0;
  REQUIRE(Read(*session, 0, kMiB) == data.substr(0, kMiB));
  REQUIRE(Read(*session, 0, kMiB) == data.substr(0, kMiB));
  CHECK(kv.scans == 2);
}

// Records written before atime, ctime and the subdirectory counts were
// appended: they end early and decode with the documented defaults.
TEST_CASE("records: a record without the appended fields decodes with their defaults", "[store]") {
  // Encodings of format 3 as first released: the same fields, nothing after.
  auto strip = [](std::string encoded, size_t trailing_bytes) {
    encoded.resize(encoded.size() - trailing_bytes);
    return encoded;
  };
  NodeRecord node = MakeNode(5, 1, "n", false);
  node.atime_ns = node.ctime_ns = 0;  // each time encodes as one varint byte
  NodeRecord old_node;
  REQUIRE(DecodeNode(strip(EncodeNode(node), 2), &old_node).ok());
  CHECK(old_node.atime_ns == node.mtime_ns);
  CHECK(old_node.ctime_ns == node.mtime_ns);
  CHECK(old_node.length == node.length);

  AssetEntry dir = MakeEntry("a", "", "d", 10, true);
  dir.atime_ns = dir.ctime_ns = 0;
  dir.subdirs = 0;
  AssetEntry old_dir;
  REQUIRE(DecodeEntry(strip(EncodeEntry(dir), 3), &old_dir).ok());
  CHECK(old_dir.subdirs == kUnknownCount);
  CHECK(old_dir.ctime_ns == dir.mtime_ns);
  AssetEntry times_only;
  REQUIRE(DecodeEntry(strip(EncodeEntry(dir), 1), &times_only).ok());
  CHECK(times_only.subdirs == kUnknownCount);
  CHECK(times_only.ctime_ns == 0);
  // atime without ctime is a record cut short, not an older one.
  AssetEntry half;
  CHECK(DecodeEntry(strip(EncodeEntry(dir), 2), &half).code() == Status::Code::kCorruption);
}

TEMPLATE_TEST_CASE("sessions: a session is created only under a name no session or asset has",
                   "[store]", UPFS_STORE_BACKENDS) {
  StoreFixture fx(TestType::kBackend);
  const uint64_t id = fx.store().NewIds(6).value();
  Batch first;
  first.Create(MakeSession(id, "taken"));
  Apply(fx.store(), first, /*sync=*/true);
  // The same name again, as another mount racing for it would.
  Batch again;
  again.Create(MakeSession(id + 3, "taken"));
  Status st = fx.store().Apply(again, /*sync=*/true);
  CHECK(st.code() == Status::Code::kExists);
  // A committed asset's name too.
  AssetRecord asset;
  asset.name = "committed";
  asset.root_id = id + 3;
  Batch commit;
  commit.Put(asset);
  Apply(fx.store(), commit, /*sync=*/true);
  Batch over_asset;
  over_asset.Create(MakeSession(id + 3, "committed"));
  CHECK(fx.store().Apply(over_asset, /*sync=*/true).code() == Status::Code::kExists);
  std::vector<SessionRecord> sessions;
  REQUIRE(fx.store().ListSessions(&sessions).ok());
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].id == id);
}

// Several mounts: each mount records its readers of committed files
// ("O"), checked against the file's id record; a removed file is listed
// to be freed (a starting mount, a sweep, a removal) only when no live
// mount reads it. Each commit notice is delivered by the mount that
// committed, or by one that took it over once that mount was gone. A
// store one process serves lists every one (the previous process's) and
// records no readers and no deliverers.
TEST_CASE(
    "several mounts: removed files are freed when no live mount reads them, and commit notices "
    "are delivered by their mount or taken over once it is gone",
    "[store]") {
  auto kv_ptr = std::make_unique<CountingKv>();
  CountingKv* kv = kv_ptr.get();
  const std::string me = "00000000000000aa", other = "00000000000000bb", gone = "00000000000000cc";
  auto lease = std::make_shared<FakeLease>(me);
  lease->live = {me, other};
  auto opened = KvStore::Open(std::move(kv_ptr), std::make_unique<MemoryBlobFiles>(),
                              /*create=*/true, lease);
  REQUIRE(opened.ok());
  KvStore& store = **opened;
  // Files 101-104 are committed (id records); 105 is not.
  KvWrite ids;
  for (uint64_t id = 101; id <= 104; ++id)
    ids.Put(keys::Id(id), EncodeLocation({"a", "", "f" + std::to_string(id)}));
  REQUIRE(kv->Commit(ids, /*sync=*/true).ok());
  std::string keeper;
  REQUIRE(store.AddReader(101, {"a", "", "f101"}).ok());
  CHECK(kv->Get(keys::Reader(101, me), &keeper).ok());
  CHECK(store.AddReader(105, {"a", "", "f105"}).IsNotFound());
  CHECK(store.AddReader(102, {"a", "", "elsewhere"}).IsNotFound());  // not where it is
  KvWrite others;
  others.Put(keys::Reader(102, other), "");
  others.Put(keys::Reader(103, gone), "");
  REQUIRE(kv->Commit(others, /*sync=*/true).ok());

  Batch keep;
  for (uint64_t id = 101; id <= 104; ++id) keep.KeepRemoved(id);
  REQUIRE(store.Apply(keep, /*sync=*/true).ok());
  REQUIRE(kv->Get(keys::Removed(101), &keeper).ok());
  CHECK(keeper == me);
  std::vector<uint64_t> freeable;
  REQUIRE(store.ListRemovedBlobs(&freeable).ok());
  CHECK(freeable == std::vector<uint64_t>{103, 104});  // 103's reader's mount is gone
  lease->live = {me};                                  // the other mount's lease ran out
  REQUIRE(store.ListRemovedBlobs(&freeable).ok());
  CHECK(freeable == std::vector<uint64_t>{102, 103, 104});
  REQUIRE(store.DropReaders({101}).ok());
  REQUIRE(store.Unread({101, 102}, &freeable).ok());
  CHECK(freeable == std::vector<uint64_t>{101, 102});
  // A session's file deleted whole (never read as committed) costs no
  // look-up of reader records; a removed asset's file freed whole takes
  // every reader record with it.
  Write(*store.OpenBlob(106), 0, "session bytes");
  kv->reader_scans = 0;
  Batch drop_session_file;
  drop_session_file.DeleteBlobData(106);
  REQUIRE(store.Apply(drop_session_file, /*sync=*/true).ok());
  CHECK(kv->reader_scans == 0);
  Batch free;
  free.DeleteBlobData(103);
  free.ForgetRemoved(103);
  REQUIRE(store.Apply(free, /*sync=*/true).ok());
  CHECK(kv->reader_scans == 1);
  CHECK(kv->Get(keys::Reader(103, gone), &keeper).IsNotFound());

  // Commit notices: this mount delivers those of its own commits, and
  // takes over (records as its own) those of mounts that are gone and
  // those that name no mount; another live mount's stay with it.
  Batch commit;
  commit.AddNotice("mine");
  REQUIRE(store.Apply(commit, /*sync=*/true).ok());
  CHECK(kv->Get(keys::Notice("mine"), &keeper).ok());
  CHECK(keeper == me);
  KvWrite notices;
  notices.Put(keys::Notice("others"), other);
  notices.Put(keys::Notice("dead"), gone);
  notices.Put(keys::Notice("older"), "");
  REQUIRE(kv->Commit(notices, /*sync=*/true).ok());
  lease->live = {me, other};
  std::vector<std::string> claimed;
  REQUIRE(store.ClaimNotices(&claimed).ok());
  CHECK(claimed == std::vector<std::string>{"dead", "mine", "older"});
  for (const char* name : {"dead", "older"}) {
    REQUIRE(kv->Get(keys::Notice(name), &keeper).ok());
    CHECK(keeper == me);
  }
  REQUIRE(kv->Get(keys::Notice("others"), &keeper).ok());
  CHECK(keeper == other);
  // A sweep's takeover lists only what it takes: not this mount's own
  // notices, nor those it took before, nor a live mount's.
  REQUIRE(store.TakeOverNotices(&claimed).ok());
  CHECK(claimed.empty());
  lease->live = {me};  // the other mount's lease ran out
  REQUIRE(store.TakeOverNotices(&claimed).ok());
  CHECK(claimed == std::vector<std::string>{"others"});
  REQUIRE(kv->Get(keys::Notice("others"), &keeper).ok());
  CHECK(keeper == me);
  REQUIRE(store.ClaimNotices(&claimed).ok());
  CHECK(claimed == std::vector<std::string>{"dead", "mine", "older", "others"});

  // One process: the records are empty, and every one is listed.
  auto single =
      KvStore::Open(std::make_unique<MemoryKv>(), std::make_unique<MemoryBlobFiles>(), true);
  REQUIRE(single.ok());
  Batch keep_one;
  keep_one.KeepRemoved(101);
  REQUIRE((*single)->Apply(keep_one, /*sync=*/true).ok());
  REQUIRE((*single)->kv()->Get(keys::Removed(101), &keeper).ok());
  CHECK(keeper.empty());
  REQUIRE((*single)->AddReader(101, {"a", "", "f101"}).ok());
  CHECK((*single)->kv()->Get(keys::Reader(101, ""), &keeper).IsNotFound());
  REQUIRE((*single)->ListRemovedBlobs(&freeable).ok());
  CHECK(freeable == std::vector<uint64_t>{101});
  Batch one_commit;
  one_commit.AddNotice("a");
  REQUIRE((*single)->Apply(one_commit, /*sync=*/true).ok());
  REQUIRE((*single)->kv()->Get(keys::Notice("a"), &keeper).ok());
  CHECK(keeper.empty());
  KvWrite foreign;
  foreign.Put(keys::Notice("b"), other);  // a store once shared
  REQUIRE((*single)->kv()->Commit(foreign, /*sync=*/true).ok());
  REQUIRE((*single)->ClaimNotices(&claimed).ok());
  CHECK(claimed == std::vector<std::string>{"a", "b"});
  REQUIRE((*single)->TakeOverNotices(&claimed).ok());
  CHECK(claimed.empty());
}

// Several mounts: each mount's grant of a uid's per-user limits is cut to
// what the other live mounts' grants leave, so that together they never
// pass the limits; a mount that is gone holds nothing; a store one
// process serves grants what is asked and stores nothing.
TEST_CASE("several mounts: the grants of the per-user limits never pass them together", "[store]") {
  auto kv = std::make_shared<MemoryKv>();
  const std::string a = "00000000000000aa", b = "00000000000000bb";
  auto lease_a = std::make_shared<FakeLease>(a);
  auto lease_b = std::make_shared<FakeLease>(b);
  lease_a->live = lease_b->live = {a, b};
  auto opened_a = KvStore::Open(std::make_unique<SharedKv>(kv), std::make_unique<MemoryBlobFiles>(),
                                /*create=*/true, lease_a);
  REQUIRE(opened_a.ok());
  auto opened_b = KvStore::Open(std::make_unique<SharedKv>(kv), std::make_unique<MemoryBlobFiles>(),
                                /*create=*/true, lease_b);
  REQUIRE(opened_b.ok());
  KvStore& mount_a = **opened_a;
  KvStore& mount_b = **opened_b;
  const QuotaGrant limit{8'000'000, 2};
  QuotaGrant granted;
  auto refused = [](const Status& st) { return st.code() == Status::Code::kQuotaExceeded; };

  REQUIRE(mount_a.SetQuotaGrant(1000, {1'000'000, 1}, {6'000'000, 1}, limit, &granted).ok());
  CHECK(granted.bytes == 6'000'000);
  CHECK(granted.sessions == 1);
  // B asks for 4 MB and needs 1: gets the 2 MB A's grant leaves.
  REQUIRE(mount_b.SetQuotaGrant(1000, {1'000'000, 1}, {4'000'000, 1}, limit, &granted).ok());
  CHECK(granted.bytes == 2'000'000);
  CHECK(granted.sessions == 1);
  // Needing 3 MB, or a third session, is refused, naming what the other
  // mount holds; B's grant stays as it was.
  Status st = mount_b.SetQuotaGrant(1000, {3'000'000, 1}, {3'000'000, 1}, limit, &granted);
  CHECK(refused(st));
  CHECK(st.message().find("hold grants of 6000000 bytes and 1 sessions for uid 1000") !=
        std::string::npos);
  CHECK(refused(mount_a.SetQuotaGrant(1000, {0, 2}, {0, 2}, limit, &granted)));
  std::string stored;
  REQUIRE(kv->Get(keys::QuotaGrants(1000), &stored).ok());
  std::vector<MountGrant> grants;
  REQUIRE(DecodeQuotaGrants(stored, &grants).ok());
  REQUIRE(grants.size() == 2);
  CHECK(grants[0].mount == a);
  CHECK(grants[1].mount == b);
  CHECK(grants[1].grant.bytes == 2'000'000);
  // Another uid has limits of its own.
  REQUIRE(mount_b.SetQuotaGrant(1001, {8'000'000, 2}, {8'000'000, 2}, limit, &granted).ok());
  // A gives its share back (never refused): B may take it all.
  REQUIRE(mount_a.SetQuotaGrant(1000, {}, {}, {}, &granted).ok());
  REQUIRE(mount_b.SetQuotaGrant(1000, {8'000'000, 2}, {8'000'000, 2}, limit, &granted).ok());
  // A mount whose lease is gone holds nothing.
  lease_a->live = {a};
  REQUIRE(mount_a.SetQuotaGrant(1000, {8'000'000, 2}, {8'000'000, 2}, limit, &granted).ok());
  REQUIRE(kv->Get(keys::QuotaGrants(1000), &stored).ok());
  REQUIRE(DecodeQuotaGrants(stored, &grants).ok());
  REQUIRE(grants.size() == 1);
  CHECK(grants[0].mount == a);

  // One process: what is asked, nothing stored.
  auto single = KvStore::Open(std::make_unique<MemoryKv>(), std::make_unique<MemoryBlobFiles>(),
                              /*create=*/true);
  REQUIRE(single.ok());
  REQUIRE((*single)->SetQuotaGrant(1000, {9'000'000, 3}, {9'000'000, 3}, limit, &granted).ok());
  CHECK(granted.bytes == 9'000'000);
  CHECK((*single)->kv()->Get(keys::QuotaGrants(1000), &stored).IsNotFound());
}

}  // namespace upfs::store::testing
