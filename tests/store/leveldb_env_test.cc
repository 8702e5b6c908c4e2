// BoundedEnv (store/leveldb_env.h), the leveldb::Env under the LevelDB
// backend, keeps its two promises: table files are read with pread(2),
// never memory-mapped (mapped pages would count in the daemon's RSS), and
// a log or table being appended to has writeback started every
// kWritebackBytes (so no sync finds more than that left to write). What it
// writes and reads are the bytes it was given, and every other file is the
// wrapped Env's.
//
// The writeback check asks the kernel how many of the file's pages are
// dirty (cachestat(2), Linux 6.5), and compares with the same appends
// through LevelDB's own Env, which starts no writeback; where the kernel
// cannot tell, or writes everything back on its own, it is skipped with a
// warning.
#include "store/leveldb_env.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/random_bytes.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {
namespace {

using upfs::testing::RandomBytes;
using upfs::testing::TempDir;

void RequireOk(const leveldb::Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteWhole(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

// Whether the file at `file` is memory-mapped into this process.
bool IsMapped(const std::string& file) {
  const std::string path = std::filesystem::canonical(file).string();  // as the kernel names it
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= path.size() &&
        line.compare(line.size() - path.size(), path.size(), path) == 0)
      return true;
  }
  return false;
}

// Records which files reach the wrapped Env.
class RecordingEnv : public leveldb::EnvWrapper {
 public:
  RecordingEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}
  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override {
    written.insert(fname);
    return target()->NewWritableFile(fname, result);
  }
  leveldb::Status NewRandomAccessFile(const std::string& fname,
                                      leveldb::RandomAccessFile** result) override {
    read.insert(fname);
    return target()->NewRandomAccessFile(fname, result);
  }
  std::set<std::string> written;
  std::set<std::string> read;
};

// The dirty pages of [0, length) of the file at `path`, or nullopt where
// the kernel has no cachestat(2).
std::optional<uint64_t> DirtyPages(const std::string& path, uint64_t length) {
#if defined(SYS_cachestat)
  constexpr long kCachestat = SYS_cachestat;
#elif defined(__x86_64__) || defined(__aarch64__)
  constexpr long kCachestat = 451;  // Linux 6.5's number; older C libraries lack the name
#else
  constexpr long kCachestat = -1;  // fails with ENOSYS: not checked
#endif
  struct Range {
    uint64_t off, len;
  } range{0, length};
  struct Stat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } stat{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const long rc = ::syscall(kCachestat, fd, &range, &stat, 0);
  ::close(fd);
  if (rc != 0) return std::nullopt;
  return stat.nr_dirty;
}

// Appends `total` bytes to a new file at `path` in 32 KiB pieces and
// leaves it open, unsynced.
std::unique_ptr<leveldb::WritableFile> AppendUnsynced(leveldb::Env& env, const std::string& path,
                                                      size_t total) {
  leveldb::WritableFile* raw = nullptr;
  RequireOk(env.NewWritableFile(path, &raw));
  std::unique_ptr<leveldb::WritableFile> file(raw);
  std::mt19937_64 rng(1);
  const std::string piece = RandomBytes(rng, 32 << 10);
  for (size_t done = 0; done < total; done += piece.size()) RequireOk(file->Append(piece));
  return file;
}

}  // namespace

TEST_CASE("leveldb env: tables are read with pread, never memory-mapped", "[store][leveldb_env]") {
  TempDir tmp;
  const std::string path = tmp.Sub("000007.ldb");
  std::mt19937_64 rng(7);
  const std::string bytes = RandomBytes(rng, 1 << 20);
  WriteWhole(path, bytes);

  RecordingEnv base;
  BoundedEnv env(&base);
  leveldb::RandomAccessFile* raw = nullptr;
  RequireOk(env.NewRandomAccessFile(path, &raw));
  std::unique_ptr<leveldb::RandomAccessFile> file(raw);
  CHECK(base.read.empty());

  std::string scratch(bytes.size(), '\0');
  leveldb::Slice got;
  RequireOk(file->Read(12345, 100000, &got, scratch.data()));
  CHECK(got.ToString() == bytes.substr(12345, 100000));
  // Past the end: what there is (LevelDB checks the length it got).
  RequireOk(file->Read(bytes.size() - 10, 100, &got, scratch.data()));
  CHECK(got.ToString() == bytes.substr(bytes.size() - 10));
  RequireOk(file->Read(bytes.size() + 10, 100, &got, scratch.data()));
  CHECK(got.empty());
  CHECK_FALSE(IsMapped(path));

  // What the check above tells apart: LevelDB's own Env maps the file.
  leveldb::RandomAccessFile* mapped = nullptr;
  RequireOk(leveldb::Env::Default()->NewRandomAccessFile(path, &mapped));
  CHECK(IsMapped(path));
  delete mapped;

  leveldb::RandomAccessFile* missing = nullptr;
  CHECK(env.NewRandomAccessFile(tmp.Sub("000008.ldb"), &missing).IsNotFound());
  CHECK(missing == nullptr);
}

TEST_CASE("leveldb env: logs and tables hold the bytes appended, other files are the wrapped Env's",
          "[store][leveldb_env]") {
  TempDir tmp;
  RecordingEnv base;
  BoundedEnv env(&base);
  std::mt19937_64 rng(11);
  // Small appends gather in the file's 64 KiB buffer, large ones bypass it;
  // both in order.
  const std::string all = RandomBytes(rng, 400000);
  const size_t sizes[] = {1, 100, 70000, 65536, 65535, 2, 150000};
  for (const char* name : {"000003.log", "000004.ldb"}) {
    const std::string path = tmp.Sub(name);
    INFO(name);
    leveldb::WritableFile* raw = nullptr;
    RequireOk(env.NewWritableFile(path, &raw));
    std::unique_ptr<leveldb::WritableFile> file(raw);
    size_t at = 0;
    for (size_t n : sizes) {
      RequireOk(file->Append(leveldb::Slice(all.data() + at, n)));
      at += n;
    }
    RequireOk(file->Flush());
    CHECK(ReadWhole(path) == all.substr(0, at));
    RequireOk(file->Append(leveldb::Slice(all.data() + at, 10)));
    RequireOk(file->Sync());
    CHECK(ReadWhole(path) == all.substr(0, at + 10));
    // Dropped without Close (LevelDB does so with a finished log): what is
    // buffered still reaches the file.
    RequireOk(file->Append(leveldb::Slice(all.data() + at + 10, 5)));
    file.reset();
    CHECK(ReadWhole(path) == all.substr(0, at + 15));
  }
  CHECK(base.written.empty());

  const std::string manifest = tmp.Sub("MANIFEST-000001");
  leveldb::WritableFile* raw = nullptr;
  RequireOk(env.NewWritableFile(manifest, &raw));
  std::unique_ptr<leveldb::WritableFile> file(raw);
  RequireOk(file->Append("manifest"));
  RequireOk(file->Close());
  CHECK(base.written == std::set<std::string>{manifest});
  CHECK(ReadWhole(manifest) == "manifest");
}

TEST_CASE("leveldb env: a log being appended to has writeback started every kWritebackBytes",
          "[store][leveldb_env]") {
  TempDir tmp;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const size_t total = 3 * BoundedEnv::kWritebackBytes + (1 << 20);

  // Without the bound: LevelDB's own Env leaves it all to the kernel.
  const std::string plain_path = tmp.Sub("plain/000005.log");
  std::filesystem::create_directory(tmp.Sub("plain"));
  auto plain = AppendUnsynced(*leveldb::Env::Default(), plain_path, total);
  RequireOk(plain->Flush());
  const std::optional<uint64_t> plain_dirty = DirtyPages(plain_path, total);
  if (!plain_dirty) {
    WARN("not checked: this kernel has no cachestat(2)");
    return;
  }
  if (*plain_dirty * page < 2 * BoundedEnv::kWritebackBytes) {
    WARN("not checked: the kernel wrote back appended bytes on its own ("
         << *plain_dirty << " dirty pages of " << total / page << ")");
    return;
  }

  BoundedEnv env(leveldb::Env::Default());
  const std::string bounded_path = tmp.Sub("000006.log");
  auto bounded = AppendUnsynced(env, bounded_path, total);
  const std::optional<uint64_t> bounded_dirty = DirtyPages(bounded_path, total);
  REQUIRE(bounded_dirty.has_value());
  INFO(*bounded_dirty << " of " << total / page << " pages dirty; LevelDB's Env: " << *plain_dirty);
  // Left for a sync: at most the bytes since writeback last started.
  CHECK(*bounded_dirty * page <= BoundedEnv::kWritebackBytes);
  // Writeback starts when kWritebackBytes gathered, not at every append.
  CHECK(*bounded_dirty > 0);
}

}  // namespace upfs::store
