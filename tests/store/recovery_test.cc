// Recovery after an unclean stop (KvStore::BeginUse): the bytes of a
// blob live in the blob files and its extent records in LevelDB, written
// in that order but synced only by a commit. A machine crash can keep a
// record whose bytes it lost, and a kill between an overwrite's bytes and
// its records leaves a record that no longer matches. The next start finds
// the in-use mark, checks every chunk of the open sessions and drops those
// that fail: they read as never received (the client sends them again),
// never as an error or as wrong bytes. After a clean stop nothing is
// dropped: damage found then is corruption, for reads and fsck to report.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store/blob_files.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/records.h"
#include "tests/store/store_fixture.h"  // Extent for Catch2's messages
#include "tests/support/shared_blob_files.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {
namespace {

constexpr uint64_t kSession = 100;
constexpr uint64_t kLost = 101;         // a file whose unsynced bytes a crash loses
constexpr uint64_t kOverwritten = 102;  // a file whose overwrite a kill cuts short
constexpr size_t kKiB = 1024;

// A LevelDB store over blob files in memory that outlive it.
struct Rig {
  upfs::testing::TempDir dir;
  std::shared_ptr<MemoryBlobFiles> files = std::make_shared<MemoryBlobFiles>();
  std::unique_ptr<Store> store;

  Rig() { Open(); }
  void Open() {
    store.reset();
    LevelDbOptions options;
    options.open_blobs = [this](const std::string&) -> Result<std::unique_ptr<BlobFiles>> {
      return std::unique_ptr<BlobFiles>(new upfs::testing::SharedBlobFiles(files));
    };
    auto s = OpenLevelDbStore(dir.Sub("store"), options);
    INFO(s.status().ToString());
    REQUIRE(s.ok());
    store = std::move(s).value();
  }
  // Closes the store, then puts back the in-use mark its clean close took
  // away: the next open sees what follows a crash.
  void CloseUncleanly() {
    store.reset();
    auto kv = OpenLevelDbKv(dir.Sub("store") + "/db", /*create=*/false);
    REQUIRE(kv.ok());
    KvWrite write;
    write.Put(std::string(keys::kInUseKey), "1");
    REQUIRE_OK((*kv)->Commit(write, /*sync=*/true));
  }
  std::vector<Extent> Extents(uint64_t blob) {
    std::vector<Extent> out;
    REQUIRE_OK(store->OpenBlob(blob)->Extents(&out));
    return out;
  }
  std::string Read(uint64_t blob, uint64_t offset, size_t n) {
    std::string out(n, '\x55');
    REQUIRE_OK(store->OpenBlob(blob)->ReadAt(offset, n, out.data()));
    return out;
  }
};

// An open session with two files.
void BeginSession(Store& store) {
  Batch batch;
  SessionRecord session;
  session.id = kSession;
  session.name = "up";
  batch.Put(session);
  for (uint64_t id : {kLost, kOverwritten}) {
    NodeRecord node;
    node.id = id;
    node.parent = kSession;
    node.name = "f" + std::to_string(id);
    batch.Put(kSession, node);
  }
  REQUIRE_OK(store.Apply(batch, /*sync=*/true));
}

}  // namespace

TEST_CASE(
    "recovery: after an unclean stop, chunks whose bytes were lost are dropped, the rest kept",
    "[store][recovery]") {
  Rig rig;
  BeginSession(*rig.store);
  const std::string a(100 * kKiB, 'a'), b(100 * kKiB, 'b'), c(100 * kKiB, 'c');
  REQUIRE_OK(rig.store->OpenBlob(kLost)->WriteAt(0, a));
  REQUIRE_OK(rig.store->OpenBlob(kOverwritten)->WriteAt(0, c));
  REQUIRE_OK(rig.store->Apply(Batch{}, /*sync=*/true));  // a and c are durable
  REQUIRE_OK(rig.store->OpenBlob(kLost)->WriteAt(200 * kKiB, b));
  // The power goes: b's bytes never reached the disk, its record did.
  rig.files->DropUnsynced();
  // And a kill cut an overwrite of c short: new bytes, old record.
  REQUIRE_OK(rig.files->Write(kOverwritten, 10 * kKiB, std::string(kKiB, 'x')));
  rig.CloseUncleanly();

  rig.Open();
  // What survived intact is kept; the rest reads as never received.
  CHECK(rig.Extents(kLost) == std::vector<Extent>{{0, 100 * kKiB}});
  CHECK(rig.Read(kLost, 0, a.size()) == a);
  CHECK(rig.Read(kLost, 200 * kKiB, b.size()) == std::string(b.size(), '\0'));
  CHECK(rig.Extents(kOverwritten).empty());
  CHECK(rig.Read(kOverwritten, 0, 1000) == std::string(1000, '\0'));
  // The client sends the missing ranges again, and they stay.
  REQUIRE_OK(rig.store->OpenBlob(kLost)->WriteAt(200 * kKiB, b));
  REQUIRE_OK(rig.store->OpenBlob(kOverwritten)->WriteAt(0, c));
  rig.Open();  // a clean stop and start
  CHECK(rig.Extents(kLost) == std::vector<Extent>{{0, 100 * kKiB}, {200 * kKiB, 300 * kKiB}});
  CHECK(rig.Read(kLost, 200 * kKiB, b.size()) == b);
  CHECK(rig.Read(kOverwritten, 0, c.size()) == c);
}

TEST_CASE("recovery: after a clean stop, damaged bytes are corruption, not silently dropped",
          "[store][recovery]") {
  Rig rig;
  BeginSession(*rig.store);
  REQUIRE_OK(rig.store->OpenBlob(kLost)->WriteAt(0, std::string(100 * kKiB, 'a')));
  rig.store.reset();  // clean: synced, the in-use mark removed
  rig.files->Damage(kLost, 5, "!");
  rig.Open();
  CHECK(rig.Extents(kLost) == std::vector<Extent>{{0, 100 * kKiB}});
  std::string out(10, '\0');
  Status st = rig.store->OpenBlob(kLost)->ReadAt(0, out.size(), out.data());
  CHECK(st.code() == Status::Code::kCorruption);
}

}  // namespace upfs::store
