// StoreFixture: a fresh Store for one test case, on the in-memory Kv or on
// LevelDB in its own temporary directory, so every store test runs against
// both backends (TEMPLATE_TEST_CASE over UPFS_STORE_BACKENDS: MemoryBackend
// and LevelDbBackend). Built with UPFS_STORE_TESTS_RADOS, the same tests
// run against the RADOS backend instead (RadosBackend: a store in its own
// RADOS namespace of the pool $UPFS_TEST_CEPH_POOL, on the cluster of
// $UPFS_TEST_CEPH_CONF; tests/store/rados_tests.sh starts one).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/memory_kv.h"
#include "store/rados_store.h"
#include "store/records.h"
#include "tests/support/backends.h"
#include "tests/support/shared_blob_files.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {

// For Catch2's messages.
inline std::ostream& operator<<(std::ostream& os, const Extent& e) {
  return os << "[" << e.begin << ", " << e.end << ")";
}

}  // namespace upfs::store

namespace upfs::store::testing {

using upfs::testing::Backend;
using upfs::testing::LevelDbBackend;
using upfs::testing::MemoryBackend;
using upfs::testing::RadosBackend;

// (Named through this namespace: the names are part of the test cases'.)
#ifdef UPFS_STORE_TESTS_RADOS
#define UPFS_STORE_BACKENDS ::upfs::store::testing::RadosBackend
#else
#define UPFS_STORE_BACKENDS \
  ::upfs::store::testing::MemoryBackend, ::upfs::store::testing::LevelDbBackend
#endif

// The test cluster's connection, from $UPFS_TEST_CEPH_CONF (fails the test
// when unset), shared by every RADOS store of the run.
inline std::shared_ptr<RadosConnection> TestRadosConnection() {
  static std::shared_ptr<RadosConnection> conn = [] {
    const char* conf = std::getenv("UPFS_TEST_CEPH_CONF");
    INFO(
        "UPFS_TEST_CEPH_CONF and UPFS_TEST_CEPH_POOL name the test cluster "
        "(tests/store/rados_tests.sh)");
    REQUIRE(conf != nullptr);
    RadosConnectOptions options;
    options.ceph_conf = conf;
    options.timeout = std::chrono::seconds(30);
    auto c = RadosConnection::Connect(options);
    INFO(c.status().ToString());
    REQUIRE(c.ok());
    return std::move(c).value();
  }();
  return conn;
}

inline std::string TestRadosPool() {
  const char* pool = std::getenv("UPFS_TEST_CEPH_POOL");
  REQUIRE(pool != nullptr);
  return pool;
}

// A RADOS namespace no other store of any run has used.
inline std::string FreshRadosNamespace() {
  static std::atomic<uint64_t> next{0};
  return "test-" + std::to_string(::getpid()) + "-" + std::to_string(time(nullptr)) + "-" +
         std::to_string(next++);
}

// Where LevelDB's store keeps blob bytes: in files (DirBlobFiles, as the
// daemon does), or in memory that survives Reopen, for tests of the
// records alone that write many small files (creating each file costs
// the file system more than the rest of the test).
enum class LevelDbBlobs { kFiles, kMemory };

class StoreFixture {
 public:
  // RADOS stripe size in these tests.
  static constexpr uint64_t kTestStripeBytes = uint64_t{256} << 10;

  explicit StoreFixture(Backend backend, LevelDbBlobs blobs = LevelDbBlobs::kFiles)
      : backend_(backend) {
    if (blobs == LevelDbBlobs::kMemory) memory_blobs_ = std::make_shared<MemoryBlobFiles>();
    Open();
  }

  Store& store() { return *store_; }
  // The Kv under the store, for checks of the key layout.
  Kv& kv() { return *dynamic_cast<KvStore&>(*store_).kv(); }
  // Where the blob bytes are, for checks of them and for damaging them.
  BlobFiles& blobs() { return *dynamic_cast<KvStore&>(*store_).blobs(); }
  Backend backend() const { return backend_; }
  const upfs::testing::TempDir& dir() const { return dir_; }

  // Closes the store and opens it again from disk or the pool (not the
  // in-memory Kv, which does not outlive its store).
  void Reopen() {
    REQUIRE(backend_ != Backend::kMemory);
    store_.reset();
    Open();
  }

 private:
  void Open() {
    if (backend_ == Backend::kMemory) {
      auto s = KvStore::Open(std::make_unique<MemoryKv>(), std::make_unique<MemoryBlobFiles>(),
                             /*create=*/true);
      REQUIRE(s.ok());
      store_ = std::move(s).value();
    } else if (backend_ == Backend::kRados) {
      if (rados_ns_.empty()) rados_ns_ = FreshRadosNamespace();
      RadosBlobOptions blob_options;
      // Small stripes, so that tests' blobs span several.
      blob_options.stripe_bytes = kTestStripeBytes;
      auto s = OpenRadosStore(TestRadosConnection(), TestRadosPool(), rados_ns_, blob_options);
      INFO(s.status().ToString());
      REQUIRE(s.ok());
      store_ = std::move(s).value();
    } else {
      LevelDbOptions options;
      if (memory_blobs_) {
        options.open_blobs =
            [blobs = memory_blobs_](const std::string&) -> Result<std::unique_ptr<BlobFiles>> {
          return std::unique_ptr<BlobFiles>(
              std::make_unique<upfs::testing::SharedBlobFiles>(blobs));
        };
      }
      auto s = OpenLevelDbStore(dir_.Sub("store"), options);
      INFO(s.status().ToString());
      REQUIRE(s.ok());
      store_ = std::move(s).value();
    }
  }

  const Backend backend_;
  std::string rados_ns_;                           // RADOS: the store's namespace
  std::shared_ptr<MemoryBlobFiles> memory_blobs_;  // LevelDbBlobs::kMemory
  upfs::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

// (offset, length) of every stored chunk of `blob`, from its extent
// records. An extent record that does not decode, or whose checksum is not
// that of the chunk's bytes in `blobs`, has the length ~0.
inline std::vector<std::pair<uint64_t, uint64_t>> ExtentRecords(const Kv& kv,
                                                                const BlobFiles& blobs,
                                                                uint64_t blob) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  Status st = kv.Scan(
      keys::Extent(blob, 0), keys::Extent(blob + 1, 0),
      [&](std::string_view k, std::string_view v) {
        if (keys::IsBlobEnd(k)) return true;
        uint64_t length = 0, checksum = 0;
        std::optional<std::string_view> inline_bytes;
        std::optional<PackedAt> packed;
        bool good = DecodeExtentValue(v, &length, &checksum, &inline_bytes, &packed) &&
                    length <= kMaxChunkBytes;
        if (good && inline_bytes) {
          good = ChunkChecksum(*inline_bytes) == checksum;
        } else if (good) {
          std::string chunk(length, '\0');
          size_t present = 0;
          good = (packed ? blobs.Read(packed->pack, packed->offset, length, chunk.data(), &present)
                         : blobs.Read(blob, keys::OffsetOf(k), length, chunk.data(), &present))
                     .ok() &&
                 present == length && ChunkChecksum(chunk) == checksum;
        }
        out.emplace_back(keys::OffsetOf(k), good ? length : ~uint64_t{0});
        return true;
      });
  REQUIRE(st.ok());
  return out;
}

// Where the bytes of a packed chunk are, from its extent record's value
// (decoded by the store's own DecodeExtentValue; fails the test unless the
// value is a packed chunk's).
inline PackedAt PackedAtOf(std::string_view extent_value) {
  uint64_t length = 0, checksum = 0;
  std::optional<std::string_view> inline_bytes;
  std::optional<PackedAt> packed;
  REQUIRE(DecodeExtentValue(extent_value, &length, &checksum, &inline_bytes, &packed));
  REQUIRE(packed.has_value());
  return *packed;
}

// The stored layout KvStore promises: every extent record's bytes are
// stored and match its checksum, no chunk is empty or over kMaxChunkBytes,
// no two chunks overlap, and the blob's end record bounds them.
inline void CheckChunkLayout(const Kv& kv, const BlobFiles& blobs, uint64_t blob) {
  auto extents = ExtentRecords(kv, blobs, blob);
  for (size_t i = 0; i < extents.size(); ++i) {
    INFO("chunk " << i << " at offset " << extents[i].first);
    REQUIRE(extents[i].second > 0);
    REQUIRE(extents[i].second <= kMaxChunkBytes);
    if (i + 1 < extents.size())
      REQUIRE(extents[i].first + extents[i].second <= extents[i + 1].first);
  }
  if (extents.empty()) return;
  std::string value;
  uint64_t bound = 0;
  REQUIRE(kv.Get(keys::BlobEnd(blob), &value).ok());
  REQUIRE(DecodeBlobEnd(value, &bound));
  REQUIRE(bound >= extents.back().first + extents.back().second);
}

}  // namespace upfs::store::testing
