// A full disk under the LevelDB store, without FUSE: upload data is refused
// with NoSpace below the reserve while records still go through; a write
// whose extent record LevelDB fails with ENOSPC (a log append, or a
// background flush whose error LevelDB makes sticky) fails with NoSpace,
// keeps every byte accepted before it, and the store takes writes again
// once space is back, without being reopened by its user; deleting a blob
// gives its space back.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <leveldb/env.h>

#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {
namespace {

// A leveldb::Env whose file writes fail with ENOSPC while full() is set:
// of write-ahead logs, of tables, or of any file. A failing append first
// writes half its data, as a real write(2) that runs out of space does, so
// the log's tail is torn.
class FullDiskEnv : public leveldb::EnvWrapper {
 public:
  enum class Target { kLogs, kTables, kAll };
  FullDiskEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

  void SetFull(bool full, Target target = Target::kAll) {
    target_ = target;
    full_ = full;
  }
  int failures() const { return failures_; }

  leveldb::Status NewWritableFile(const std::string& f, leveldb::WritableFile** r) override {
    leveldb::Status s = target()->NewWritableFile(f, r);
    if (s.ok()) *r = new File(this, f, *r);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& f, leveldb::WritableFile** r) override {
    leveldb::Status s = target()->NewAppendableFile(f, r);
    if (s.ok()) *r = new File(this, f, *r);
    return s;
  }

 private:
  class File : public leveldb::WritableFile {
   public:
    File(FullDiskEnv* env, std::string name, leveldb::WritableFile* base)
        : env_(env), name_(std::move(name)), base_(base) {}
    leveldb::Status Append(const leveldb::Slice& data) override {
      if (!env_->Fails(name_)) return base_->Append(data);
      base_->Append(leveldb::Slice(data.data(), data.size() / 2));
      base_->Flush();
      return env_->NoSpace(name_);
    }
    leveldb::Status Flush() override {
      return env_->Fails(name_) ? env_->NoSpace(name_) : base_->Flush();
    }
    leveldb::Status Sync() override {
      return env_->Fails(name_) ? env_->NoSpace(name_) : base_->Sync();
    }
    leveldb::Status Close() override { return base_->Close(); }

   private:
    FullDiskEnv* const env_;
    const std::string name_;
    const std::unique_ptr<leveldb::WritableFile> base_;
  };

  bool Fails(const std::string& name) const {
    if (!full_) return false;
    auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.ends_with(s); };
    switch (target_.load()) {
      case Target::kLogs:
        return ends(".log");
      case Target::kTables:
        return ends(".ldb");
      case Target::kAll:
        return true;
    }
    return true;
  }
  leveldb::Status NoSpace(const std::string& name) {
    ++failures_;
    return leveldb::Status::IOError(name, "No space left on device");
  }

  std::atomic<bool> full_{false};
  std::atomic<Target> target_{Target::kAll};
  std::atomic<int> failures_{0};
};

std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((seed * 131 + i * 7 + (i >> 11)) & 0xff);
  return s;
}

// Bytes of the files under `dir`; LevelDB may delete files meanwhile.
uint64_t DirectoryBytes(const std::filesystem::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    uint64_t size = it->file_size(size_ec);
    if (!size_ec) total += size;
  }
  return total;
}

struct Fixture {
  upfs::testing::TempDir dir;
  FullDiskEnv env;
  std::atomic<uint64_t> free_bytes{uint64_t{1} << 40};
  LevelDbOptions options;
  std::unique_ptr<Store> store;

  explicit Fixture(uint64_t reserve = 0, size_t write_buffer = 256 << 10) {
    options.env = &env;
    options.write_buffer_size = write_buffer;  // small: many flushes
    options.max_file_size = write_buffer;
    options.reserve_bytes = reserve;
    options.free_bytes = [this]() -> Result<uint64_t> { return free_bytes.load(); };
    Open();
  }
  void Open() {
    store.reset();
    auto s = OpenLevelDbStore(dir.Sub("store"), options);
    INFO(s.status().ToString());
    REQUIRE(s.ok());
    store = std::move(s).value();
  }
  std::string Read(uint64_t blob, uint64_t offset, size_t n) {
    std::string out(n, '\x55');
    Status st = store->OpenBlob(blob)->ReadAt(offset, n, out.data());
    INFO(st.ToString());
    REQUIRE(st.ok());
    return out;
  }
};

constexpr size_t kPiece = 64 << 10;

// Writes pieces of blob `blob` from piece 0 on until one fails; returns
// how many succeeded and the failure.
std::pair<size_t, Status> WriteUntilFailure(Store& store, uint64_t blob, size_t max_pieces,
                                            size_t piece = kPiece) {
  auto sink = store.OpenBlob(blob);
  for (size_t i = 0; i < max_pieces; ++i) {
    Status st = sink->WriteAt(i * piece, Pattern(piece, blob * 1000 + i));
    if (!st.ok()) return {i, st};
  }
  return {max_pieces, Status::OK()};
}

// Retries `write` until it succeeds (the store reopens at most once a
// second) or 10 s pass.
Status RetryUntilOk(const std::function<Status()>& write) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Status st;
  while (!(st = write()).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(20));  // polling interval, not a synchronisation
  }
  return st;
}

}  // namespace

TEST_CASE("enospc: upload data is refused below the reserve, records are not", "[space]") {
  constexpr uint64_t kReserve = 100 << 20;
  Fixture fx(kReserve);
  fx.free_bytes = kReserve + (4 << 20);
  auto sink = fx.store->OpenBlob(20);
  REQUIRE(sink->WriteAt(0, Pattern(kPiece, 1)).ok());

  fx.free_bytes = kReserve - 1;
  // The guard looks at statvfs again within a quarter of the headroom it
  // last saw (here 1 MiB), so the refusal comes within 16 pieces.
  auto [written, st] = WriteUntilFailure(*fx.store, 21, 64);
  INFO(st.ToString());
  CHECK(written <= 16);
  REQUIRE(st.code() == Status::Code::kNoSpace);
  CHECK(st.message().find("reserve") != std::string::npos);
  CHECK(fx.env.failures() == 0);  // refused before LevelDB saw anything

  // Records still go through: a commit, and a delete that frees space.
  Batch batch;
  SessionRecord session;
  session.id = fx.store->NewIds(1).value();
  session.name = "still-works";
  batch.Put(session);
  batch.DeleteBlobData(21);
  REQUIRE(fx.store->Apply(batch, /*sync=*/true).ok());
  // The bytes accepted before stay.
  CHECK(fx.Read(20, 0, kPiece) == Pattern(kPiece, 1));

  fx.free_bytes = kReserve + (64 << 20);
  REQUIRE(sink->WriteAt(kPiece, Pattern(kPiece, 2)).ok());
  CHECK(fx.Read(20, 0, 2 * kPiece) == Pattern(kPiece, 1) + Pattern(kPiece, 2));
}

TEST_CASE(
    "enospc: a write LevelDB fails with ENOSPC is NoSpace, and the store recovers once space is "
    "back",
    "[space]") {
  const auto target =
      GENERATE(FullDiskEnv::Target::kLogs, FullDiskEnv::Target::kTables, FullDiskEnv::Target::kAll);
  INFO("failing writes of " << (target == FullDiskEnv::Target::kLogs     ? "logs"
                                : target == FullDiskEnv::Target::kTables ? "tables"
                                                                         : "all files"));
  constexpr uint64_t kReserve = 1 << 20;
  Fixture fx(kReserve);
  // Small pieces: each is an extent record in LevelDB (the bytes go to the
  // blob files), so LevelDB's log and memtable fill fast.
  constexpr size_t kPiece = 256;
  // Before: 2 MiB that must survive everything below.
  auto [before, ok] = WriteUntilFailure(*fx.store, 20, 32, kPiece);
  REQUIRE(ok.ok());

  fx.env.SetFull(true, target);
  fx.free_bytes = 0;
  // A table failure shows only once a memtable fills and its flush fails;
  // then LevelDB's error is sticky.
  auto [accepted, failure] = WriteUntilFailure(*fx.store, 21, 1 << 16, kPiece);
  INFO(failure.ToString());
  REQUIRE(failure.code() == Status::Code::kNoSpace);
  REQUIRE(fx.env.failures() > 0);
  // Still full: writes keep failing with NoSpace, records too, reads work.
  CHECK(fx.store->OpenBlob(22)->WriteAt(0, "x").code() == Status::Code::kNoSpace);
  CHECK(fx.Read(20, 0, before * kPiece) == [&] {
    std::string all;
    for (size_t i = 0; i < before; ++i) all += Pattern(kPiece, 20 * 1000 + i);
    return all;
  }());

  // Space comes back, but less than a reopen needs (the logs it replays
  // and 4 MiB): the store does not try yet.
  fx.env.SetFull(false);
  fx.free_bytes = 1 << 20;
  CHECK(fx.store->OpenBlob(22)->WriteAt(0, "x").code() == Status::Code::kNoSpace);
  fx.free_bytes = uint64_t{1} << 40;
  // Now writes resume (after the reopen), with no restart by the caller.
  auto sink = fx.store->OpenBlob(21);
  REQUIRE(RetryUntilOk([&] {
            return sink->WriteAt(accepted * kPiece, Pattern(kPiece, 21 * 1000 + accepted));
          }).ok());
  for (size_t i = accepted + 1; i < accepted + 8; ++i)
    REQUIRE(sink->WriteAt(i * kPiece, Pattern(kPiece, 21 * 1000 + i)).ok());

  // Every byte accepted before, during and after, also after a reopen.
  auto check = [&] {
    for (size_t i = 0; i < before; ++i)
      REQUIRE(fx.Read(20, i * kPiece, kPiece) == Pattern(kPiece, 20 * 1000 + i));
    for (size_t i = 0; i < accepted + 8; ++i) {
      INFO("piece " << i);
      REQUIRE(fx.Read(21, i * kPiece, kPiece) == Pattern(kPiece, 21 * 1000 + i));
    }
  };
  check();
  fx.Open();
  check();
}

TEST_CASE("enospc: deleting a blob gives its disk space back", "[space]") {
  Fixture fx(0, 4 << 20);
  auto [pieces, ok] = WriteUntilFailure(*fx.store, 30, 40 * 16);  // 40 MiB
  REQUIRE(ok.ok());
  REQUIRE(WriteUntilFailure(*fx.store, 31, 16).second.ok());  // 1 MiB that stays
  const uint64_t full = DirectoryBytes(fx.dir.path());
  REQUIRE(full > (40 << 20));
  Batch batch;
  batch.DeleteBlobData(30);
  REQUIRE(fx.store->Apply(batch, /*sync=*/false).ok());
  // Reclaimed in the background: poll (every 20 ms, for up to 10 s).
  uint64_t after = full;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((after = DirectoryBytes(fx.dir.path())) + (30 << 20) >= full &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO("store: " << full << " bytes with the blob, " << after << " after deleting it");
  CHECK(after + (30 << 20) < full);
  CHECK(fx.Read(31, 0, kPiece) == Pattern(kPiece, 31 * 1000));
}

}  // namespace upfs::store
