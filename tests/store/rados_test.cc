// The RADOS backend's own promises, against a real cluster (label rados;
// tests/store/rados_tests.sh starts one): where RadosKv puts each key, that
// scans merge objects in key order, that a commit spanning objects which
// stopped after its intent is completed by the next open, and that
// RadosBlobFiles bounds its writes in flight, reads its own writes,
// truncates across stripes and lists what it holds.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "store/rados_blob_files.h"
#include "store/rados_kv.h"
#include "store/rados_lock.h"
#include "store/rados_store.h"
#include "store/records.h"
#include "tests/store/store_fixture.h"
#include "tests/support/status_assertions.h"

namespace upfs::store::testing {
namespace {

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A raw I/O context on the store's namespace, to look behind the backend.
librados::IoCtx RawIo(const std::string& ns) {
  auto io = TestRadosConnection()->OpenPool(TestRadosPool(), ns);
  REQUIRE_OK(io.status());
  return std::move(io).value();
}

std::map<std::string, std::string> OmapOf(librados::IoCtx& io, const std::string& oid) {
  std::map<std::string, librados::bufferlist> vals;
  bool more = false;
  const int rc = io.omap_get_vals2(oid, "", 10000, &vals, &more);
  std::map<std::string, std::string> out;
  if (rc == -ENOENT) return out;
  REQUIRE(rc >= 0);
  for (auto& [k, v] : vals) out[k] = v.to_str();
  return out;
}

std::unique_ptr<RadosKv> OpenKv(const std::string& ns) {
  auto kv = RadosKv::Open(TestRadosConnection(), TestRadosPool(), ns);
  REQUIRE_OK(kv.status());
  return std::move(kv).value();
}

KvWrite Puts(std::initializer_list<std::pair<std::string, std::string>> puts) {
  KvWrite w;
  for (const auto& [k, v] : puts) w.Put(k, v);
  return w;
}

// The value of `key`, or "(absent)".
std::string ValueOf(const Kv& kv, const std::string& key) {
  std::string value;
  Status st = kv.Get(key, &value);
  if (st.IsNotFound()) return "(absent)";
  REQUIRE_OK(st);
  return value;
}

std::vector<std::pair<std::string, std::string>> ScanAll(const Kv& kv, std::string_view begin,
                                                         std::string_view end) {
  std::vector<std::pair<std::string, std::string>> out;
  REQUIRE_OK(kv.Scan(begin, end, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  }));
  return out;
}

// The intents a multi-object commit left in the Kv.
std::vector<std::pair<std::string, std::string>> Intents(const Kv& kv) {
  const std::string tag(1, keys::kIntentTag);
  return ScanAll(kv, tag, keys::PrefixEnd(tag));
}

}  // namespace

TEST_CASE("rados kv: extent keys go to their blob's object, every other key to upfs.meta",
          "[rados]") {
  const std::string ns = FreshRadosNamespace();
  auto kv = OpenKv(ns);
  REQUIRE_OK(kv->Commit(Puts({{keys::Extent(7, 4096), "chunk"}, {keys::BlobEnd(7), "end"}}), true));
  REQUIRE_OK(
      kv->Commit(Puts({{keys::Session("s"), "session"}, {keys::Asset("a"), "asset"}}), true));

  librados::IoCtx io = RawIo(ns);
  auto blob = OmapOf(io, "upfs.x.0000000000000007");
  REQUIRE(blob.size() == 2);
  CHECK(blob[keys::Extent(7, 4096)] == "chunk");
  auto meta = OmapOf(io, "upfs.meta");
  CHECK(meta.size() == 2);
  CHECK(meta[keys::Session("s")] == "session");
  CHECK(ValueOf(*kv, keys::Extent(7, 4096)) == "chunk");
  CHECK(ValueOf(*kv, keys::Extent(8, 0)) == "(absent)");
  CHECK(ValueOf(*kv, keys::Asset("b")) == "(absent)");
  CHECK(kv->Commit(Puts({{keys::ExtentPrefix() + "\x01", "no blob"}}), true).code() ==
        Status::Code::kInvalidArgument);
}

TEST_CASE("rados kv: scans merge meta and several blob objects in key order, over many pages",
          "[rados]") {
  auto kv = OpenKv(FreshRadosNamespace());
  std::map<std::string, std::string> model;
  KvWrite w;
  auto put = [&](std::string k, std::string v) {
    model[k] = v;
    w.Put(std::move(k), std::move(v));
  };
  put("A1", "a");
  put("N", "n");
  put("S9", "s");
  for (uint64_t blob : {3, 5, 200}) {
    for (uint64_t off = 0; off < 5; ++off)
      put(keys::Extent(blob, off * 100), std::to_string(blob * 1000 + off));
    put(keys::BlobEnd(blob), "e");
  }
  // More keys in one object than one omap read returns.
  for (uint64_t off = 0; off < RadosKv::kScanPage + 500; ++off) put(keys::Extent(9, off), "p");
  REQUIRE_OK(kv->Commit(w, true));  // one commit over five objects: through an intent

  std::vector<std::pair<std::string, std::string>> want(model.begin(), model.end());
  CHECK(ScanAll(*kv, "", "\xff") == want);

  // Bounds inside blobs and across them.
  const std::string b = keys::Extent(5, 150), e = keys::Extent(200, 300);
  std::vector<std::pair<std::string, std::string>> part(model.lower_bound(b), model.lower_bound(e));
  CHECK(ScanAll(*kv, b, e) == part);
  // One blob's keys, as fsck and KvStore ask for them, and bounds that
  // are not keys.
  for (const auto& [lo, hi] : std::vector<std::pair<std::string, std::string>>{
           {keys::Extent(5, 0), keys::Extent(6, 0)},
           {keys::Extent(5, 100), keys::Extent(5, 300)},
           {keys::Extent(3, 0).substr(0, 9), keys::Extent(5, 0).substr(0, 9)},
           {keys::ExtentPrefix(), keys::Extent(4, 0).substr(0, 5)},
           {"0", keys::ExtentPrefix() + "\x01"},
           {"B", "Z"},
           {"S", "Z"}}) {
    std::vector<std::pair<std::string, std::string>> range(model.lower_bound(lo),
                                                           model.lower_bound(hi));
    CHECK(ScanAll(*kv, lo, hi) == range);
  }
  const std::string one = keys::Extent(9, 0);
  auto blob9 = ScanAll(*kv, one, keys::PrefixEnd(one.substr(0, 9)));
  CHECK(blob9.size() == RadosKv::kScanPage + 500);
  // A visitor that stops.
  int seen = 0;
  REQUIRE_OK(kv->Scan("", "\xff", [&](std::string_view, std::string_view) { return ++seen < 4; }));
  CHECK(seen == 4);
  // No intent is left behind.
  CHECK(Intents(*kv).empty());
}

// The write of the crash tests: meta, and three blobs' objects.
KvWrite SpanningWrite() {
  KvWrite w = Puts({{keys::Asset("x"), "asset"}, {keys::Extent(1, 0), "new"}});
  w.Delete(keys::Extent(2, 0));
  w.Put(keys::Extent(3, 0), "added");
  return w;
}

void CheckSpanningWriteDone(const RadosKv& kv) {
  CHECK(ValueOf(kv, keys::Extent(1, 0)) == "new");
  CHECK(ValueOf(kv, keys::Extent(2, 0)) == "(absent)");
  CHECK(ValueOf(kv, keys::Extent(3, 0)) == "added");
  CHECK(ValueOf(kv, keys::Asset("x")) == "asset");
  CHECK(Intents(kv).empty());
}

TEST_CASE(
    "rados kv: a commit spanning objects that stopped after its intent is completed by the next "
    "open",
    "[rados]") {
  const std::string ns = FreshRadosNamespace();
  const bool same_process = GENERATE(false, true);
  INFO("completed by " << (same_process ? "the next commit" : "the next open"));
  std::unique_ptr<RadosKv> kv = OpenKv(ns);
  REQUIRE_OK(kv->Commit(Puts({{keys::Extent(1, 0), "old"}, {keys::Extent(2, 0), "gone"}}), true));
  kv->StopNextCommitAfterIntentForTest();
  CHECK(!kv->Commit(SpanningWrite(), true).ok());
  // Stopped halfway: the meta part and the intent are stored, the blobs'
  // parts are not.
  CHECK(ValueOf(*kv, keys::Asset("x")) == "asset");
  CHECK(ValueOf(*kv, keys::Extent(1, 0)) == "old");
  CHECK(ValueOf(*kv, keys::Extent(3, 0)) == "(absent)");
  CHECK(Intents(*kv).size() == 1);
  if (same_process) {
    REQUIRE_OK(kv->Commit(Puts({{keys::Extent(9, 0), "later"}}), true));
  } else {
    kv.reset();
    kv = OpenKv(ns);
    CHECK(kv->rolled_forward() == 1);
  }
  CheckSpanningWriteDone(*kv);
  // A later commit spanning objects works as usual, and is not undone.
  REQUIRE_OK(kv->Commit(Puts({{keys::Extent(1, 0), "newer"}, {keys::Extent(5, 0), "b"}}), true));
  kv = OpenKv(ns);
  CHECK(kv->rolled_forward() == 0);
  CHECK(ValueOf(*kv, keys::Extent(1, 0)) == "newer");
}

TEST_CASE("rados kv: scans across objects see commits across objects whole", "[rados]") {
  auto kv = OpenKv(FreshRadosNamespace());
  auto counter = [](int i) {
    return Puts({{keys::Asset("c"), std::to_string(i)},
                 {keys::Extent(1, 0), std::to_string(i)},
                 {keys::Extent(2, 0), std::to_string(i)}});
  };
  REQUIRE_OK(kv->Commit(counter(0), true));
  constexpr int kCommits = 40;
  Status written;
  std::thread writer([&] {
    for (int i = 1; i <= kCommits && written.ok(); ++i) written = kv->Commit(counter(i), true);
  });
  int scans = 0, torn = 0;
  std::string last;
  while (last != std::to_string(kCommits) && written.ok()) {
    // Only the three keys (no intent), with one value.
    auto all = ScanAll(*kv, "", "\xff");
    if (all.size() != 3 || all[0].second != all[1].second || all[1].second != all[2].second) {
      ++torn;
    } else {
      last = all[0].second;
    }
    ++scans;
  }
  writer.join();
  REQUIRE_OK(written);
  INFO(scans << " scans");
  CHECK(torn == 0);
}

TEST_CASE("rados kv: Compact removes extent objects left empty, and only those", "[rados]") {
  const std::string ns = FreshRadosNamespace();
  auto kv = OpenKv(ns);
  REQUIRE_OK(kv->Commit(Puts({{keys::Extent(1, 0), "a"}, {keys::Extent(2, 0), "b"}}), true));
  KvWrite d;
  d.Delete(keys::Extent(1, 0));
  REQUIRE_OK(kv->Commit(d, true));
  librados::IoCtx io = RawIo(ns);
  uint64_t size = 0;
  time_t mtime = 0;
  REQUIRE(io.stat(RadosKv::ExtentObject(1), &size, &mtime) == 0);
  REQUIRE_OK(kv->Compact(keys::Extent(0, ~uint64_t{0}), keys::Extent(2, ~uint64_t{0})));
  CHECK(io.stat(RadosKv::ExtentObject(1), &size, &mtime) == -ENOENT);
  CHECK(io.stat(RadosKv::ExtentObject(2), &size, &mtime) == 0);
}

TEST_CASE(
    "rados kv: records committed in the background read as written at once, and scans wait for "
    "them",
    "[rados]") {
  const std::string ns = FreshRadosNamespace();
  auto kv = RadosKv::Open(TestRadosConnection(), TestRadosPool(), ns);
  REQUIRE_OK(kv.status());
  REQUIRE((*kv)->CommitsInBackground());
  // 200 commits of one blob's records, each rewriting its end record and
  // replacing the previous commit's record with two (as writes over
  // earlier ones do), without waiting.
  std::string value;
  for (uint64_t i = 0; i < 200; ++i) {
    KvWrite write;
    if (i > 0) write.Delete(keys::Extent(7, (i - 1) * 10 + 5));
    write.Put(keys::Extent(7, i * 10), "a" + std::to_string(i));
    write.Put(keys::Extent(7, i * 10 + 5), "b" + std::to_string(i));
    write.Put(keys::BlobEnd(7), std::to_string(i));
    REQUIRE_OK((*kv)->Commit(write, /*sync=*/false));
    REQUIRE_OK((*kv)->Get(keys::BlobEnd(7), &value));
    CHECK(value == std::to_string(i));  // read-your-writes, under way or not
  }
  CHECK((*kv)->Get(keys::Extent(7, 5), &value).code() == Status::Code::kNotFound);
  std::vector<std::string> seen;
  REQUIRE_OK((*kv)->Scan(keys::Extent(7, 0), keys::Extent(7, 100000),
                         [&](std::string_view, std::string_view v) {
                           seen.emplace_back(v);
                           return true;
                         }));
  // Those written while one of the object's commits was going out were
  // queued behind it as one (each a round trip of its own before).
  CHECK((*kv)->background_sends() < 100);
  REQUIRE(seen.size() == 201);  // 200 heads and the last tail, in key order
  CHECK(seen.front() == "a0");
  CHECK(seen[199] == "a199");
  CHECK(seen.back() == "b199");
  // A synced commit comes after them; a second Kv (another process) sees
  // every one of them.
  REQUIRE_OK((*kv)->Commit(Puts({{keys::Session("s"), "x"}}), /*sync=*/true));
  CHECK((*kv)->TakeWriteFailure(keys::BlobEnd(7)).ok());
  auto other = RadosKv::Open(TestRadosConnection(), TestRadosPool(), ns);
  REQUIRE_OK(other.status());
  size_t stored = 0;
  REQUIRE_OK((*other)->Scan(keys::Extent(7, 0), keys::Extent(7, 100000),
                            [&](std::string_view, std::string_view) {
                              ++stored;
                              return true;
                            }));
  CHECK(stored == 201);
  CHECK(ValueOf(**other, keys::BlobEnd(7)) == "199");

  // More new keys than one queued commit takes: the writes after it wait
  // for it to go out, and every key is stored.
  const uint64_t sends = (*kv)->background_sends();
  const uint64_t commits = RadosKv::kMaxCoalescedKeys;
  for (uint64_t i = 0; i < commits; ++i) {
    KvWrite write;
    write.Put(keys::Extent(8, i * 10), "c" + std::to_string(i));
    write.Put(keys::Extent(8, i * 10 + 5), "d" + std::to_string(i));
    REQUIRE_OK((*kv)->Commit(write, /*sync=*/false));
  }
  CHECK((*kv)->TakeWriteFailure(keys::BlobEnd(8)).ok());
  CHECK((*kv)->background_sends() - sends >= 3);  // one, then at least two queued
  stored = 0;
  REQUIRE_OK((*other)->Scan(keys::Extent(8, 0), keys::Extent(8, 100000),
                            [&](std::string_view, std::string_view) {
                              ++stored;
                              return true;
                            }));
  CHECK(stored == 2 * commits);
}

TEST_CASE("rados kv: CheckRoomForData refuses data beyond the pool's quota", "[rados]") {
  const char* quota_pool = std::getenv("UPFS_TEST_CEPH_QUOTA_POOL");
  REQUIRE(quota_pool != nullptr);  // a pool with a 100 MB quota (rados_tests.sh)
  auto kv = RadosKv::Open(TestRadosConnection(), quota_pool, FreshRadosNamespace());
  REQUIRE_OK(kv.status());
  REQUIRE_OK((*kv)->CheckRoomForData(1 << 20));
  CHECK((*kv)->CheckRoomForData(200'000'000).code() == Status::Code::kNoSpace);
}

namespace {

std::unique_ptr<RadosBlobFiles> OpenBlobs(const std::string& ns, const RadosBlobOptions& options) {
  auto blobs = RadosBlobFiles::Open(TestRadosConnection(), TestRadosPool(), ns, options);
  REQUIRE_OK(blobs.status());
  return std::move(blobs).value();
}

std::string ReadBack(const BlobFiles& blobs, uint64_t blob, uint64_t offset, size_t n,
                     size_t* present) {
  std::string out(n, '\x55');
  REQUIRE_OK(blobs.Read(blob, offset, n, out.data(), present));
  return out;
}

// 64 KiB stripes; at most `ops` writes and `bytes` in flight.
RadosBlobOptions SmallStripes(size_t ops, uint64_t bytes) {
  RadosBlobOptions options;
  options.stripe_bytes = 64 << 10;
  options.max_in_flight = ops;
  options.max_in_flight_bytes = bytes;
  return options;
}

// Writes `data` at 0 of `blob` in writes of `piece` bytes.
Status WriteInPieces(BlobFiles& blobs, uint64_t blob, const std::string& data, size_t piece) {
  for (size_t at = 0; at < data.size(); at += piece) {
    UPFS_RETURN_IF_ERROR(blobs.Write(blob, at, std::string_view(data).substr(at, piece)));
  }
  return Status::OK();
}

// The store's lock tells a holder that died on this host (its lock is
// broken at once) from one that lives, or lives elsewhere (waited out).
TEST_CASE(
    "store lock: a cookie names a dead local process only when its PID and start time are gone",
    "[rados]") {
  const std::string mine = RadosStoreLock::CookieOfThisProcess("mount");
  CHECK(mine.find(" pid=" + std::to_string(::getpid()) + " ") != std::string::npos);
  CHECK_FALSE(RadosStoreLock::NamesDeadLocalProcess(mine));
  // A child that has exited and been reaped: its PID names no process.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  std::string dead = mine;
  dead.replace(dead.find(" pid="), std::string(" pid=" + std::to_string(::getpid())).size(),
               " pid=" + std::to_string(child));
  CHECK(RadosStoreLock::NamesDeadLocalProcess(dead));
  // This PID, started at another time: a reused PID.
  std::string reused = mine;
  const size_t start = reused.find(" start=") + 7;
  reused.replace(start, reused.find(' ', start) - start, "1");
  CHECK(RadosStoreLock::NamesDeadLocalProcess(reused));
  // Another machine's process (another boot id, whatever its host name)
  // is never taken for dead; nor is a cookie that is not upfs's.
  std::string elsewhere = dead;
  const size_t boot = elsewhere.find(" boot=") + 6;
  elsewhere.replace(boot, elsewhere.find(' ', boot) - boot, "00000000-0000-0000-0000-000000000000");
  CHECK_FALSE(RadosStoreLock::NamesDeadLocalProcess(elsewhere));
  CHECK_FALSE(RadosStoreLock::NamesDeadLocalProcess("auto 140234"));
}

}  // namespace

TEST_CASE("rados blobs: writes in flight stay within their bounds, and reads see them before Sync",
          "[rados]") {
  auto blobs = OpenBlobs(FreshRadosNamespace(), SmallStripes(4, 160 << 10));
  const std::string data = Pattern(4 << 20, 1);
  // 64 stripes written in pieces of 40 KiB (most span two stripes).
  REQUIRE_OK(WriteInPieces(*blobs, 1, data, 40 << 10));
  CHECK(blobs->peak_in_flight() <= 4);
  CHECK(blobs->peak_in_flight_bytes() <= (160 << 10));
  CHECK(blobs->peak_in_flight() >= 2);  // writes did overlap
  // Read-your-writes: the latest bytes, right after the Write. (RADOS
  // also orders one client's operations on an object, so this holds even
  // without RadosBlobFiles' own wait for overlapping writes; that wait
  // keeps it true should reads go elsewhere, e.g. to replicas.)
  const std::string rewrite = Pattern(100 << 10, 2);
  REQUIRE_OK(blobs->Write(1, 1000, rewrite));
  size_t present = 0;
  CHECK(ReadBack(*blobs, 1, 1000, rewrite.size(), &present) == rewrite);
  CHECK(present == rewrite.size());
  REQUIRE_OK(blobs->Sync());
  std::string want = data;
  want.replace(1000, rewrite.size(), rewrite);
  CHECK(ReadBack(*blobs, 1, 0, want.size(), &present) == want);
  CHECK(present == want.size());
}

TEST_CASE("rados blobs: writes from several threads stay within the bounds together", "[rados]") {
  auto blobs = OpenBlobs(FreshRadosNamespace(), SmallStripes(3, 128 << 10));
  std::vector<std::thread> writers;
  std::vector<Status> results(4);
  for (uint64_t t = 0; t < 4; ++t) {
    writers.emplace_back(
        [&, t] { results[t] = WriteInPieces(*blobs, t, Pattern(1 << 20, 10 + t), 48 << 10); });
  }
  for (auto& w : writers) w.join();
  for (const Status& st : results) REQUIRE_OK(st);
  REQUIRE_OK(blobs->Sync());
  CHECK(blobs->peak_in_flight() <= 3);
  CHECK(blobs->peak_in_flight_bytes() <= (128 << 10));
  for (uint64_t t = 0; t < 4; ++t) {
    size_t present = 0;
    CHECK(ReadBack(*blobs, t, 0, 1 << 20, &present) == Pattern(1 << 20, 10 + t));
  }
}

TEST_CASE(
    "rados blobs: a write that fails is reported once by the next Sync, and kept for its blob's "
    "commit",
    "[rados]") {
  RadosBlobOptions options;
  options.stripe_bytes = uint64_t{1} << 30;  // stripes past osd_max_object_size (128 MiB)
  auto blobs = OpenBlobs(FreshRadosNamespace(), options);
  REQUIRE_OK(blobs->Write(1, 0, "fits"));
  REQUIRE_OK(blobs->Write(1, uint64_t{200} << 20, "too far"));  // queued: its failure comes later
  const Status synced = blobs->Sync();
  INFO(synced.ToString());
  CHECK(synced.code() == Status::Code::kTooLarge);
  CHECK(synced.message().find("upfs.b.0000000000000001.00000000") != std::string::npos);
  REQUIRE_OK(blobs->Sync());  // reported once, like fdatasync
  size_t present = 0;
  CHECK(ReadBack(*blobs, 1, 0, 4, &present) == "fits");
  // ... but the range stays lost for the blob's next commit to find, once.
  CHECK(blobs->TakeLost(2).empty());
  const std::vector<Extent> lost = blobs->TakeLost(1);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0] == Extent{uint64_t{200} << 20, (uint64_t{200} << 20) + 7});
  CHECK(blobs->TakeLost(1).empty());
  blobs->RestoreLost(1, lost);
  CHECK(blobs->TakeLost(1) == lost);
  // A blob cut below a lost range forgets it (without waiting for a Sync).
  REQUIRE_OK(blobs->Write(3, uint64_t{300} << 20, "too far"));
  REQUIRE_OK(blobs->Write(3, uint64_t{150} << 20, "too far"));
  REQUIRE_OK(blobs->Truncate(3, uint64_t{200} << 20, uint64_t{301} << 20));
  const std::vector<Extent> kept = blobs->TakeLost(3);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].begin == uint64_t{150} << 20);
}

TEST_CASE(
    "rados blobs: a pool over its quota fails writes with NoSpace at once, and removals still work",
    "[rados]") {
  const char* quota_pool = std::getenv("UPFS_TEST_CEPH_QUOTA_POOL");
  REQUIRE(quota_pool != nullptr);  // 100 MB (rados_tests.sh)
  const std::string ns = FreshRadosNamespace();
  auto blobs = RadosBlobFiles::Open(TestRadosConnection(), quota_pool, ns);
  REQUIRE_OK(blobs.status());
  auto kv = RadosKv::Open(TestRadosConnection(), quota_pool, ns);
  REQUIRE_OK(kv.status());
  // Records already in the pool (its meta and this blob's objects exist).
  REQUIRE_OK(
      (*kv)->Commit(Puts({{keys::Extent(1, 0), "first"}, {keys::Session("s"), "open"}}), true));
  // The quota takes effect some seconds after it is crossed (statistics
  // reach the monitor in 5 s periods; ~10 s here): write at ~25 MB/s
  // until refused.
  const std::string mib = Pattern(1 << 20, 5);
  Status st;
  uint64_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (st.ok() && std::chrono::steady_clock::now() < deadline) {
    st = (*blobs)->Write(1, written, mib);
    if (st.ok()) st = (*blobs)->Sync();
    written += mib.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  INFO("after " << written << " bytes: " << st.ToString());
  CHECK(st.code() == Status::Code::kNoSpace);  // not a hang, not a timeout
  CHECK(written > 100'000'000);
  // The Kv sees it too, once its cached view is a second old.
  std::this_thread::sleep_for(RadosKv::kSpaceCacheTime + std::chrono::milliseconds(100));
  CHECK((*kv)->CheckRoomForData(1).code() == Status::Code::kNoSpace);
  // Records of existing objects still go through on the full pool
  // (sessions can be finished and aborted), and bytes can be freed.
  REQUIRE_OK((*kv)->Commit(Puts({{keys::Extent(1, 0), "record"}, {keys::Session("s"), "finished"}}),
                           true));
  CHECK(ValueOf(**kv, keys::Extent(1, 0)) == "record");
  KvWrite removal;
  removal.Delete(keys::Session("s"));
  removal.Delete(keys::Extent(1, 0));
  REQUIRE_OK((*kv)->Commit(removal, true));
  // A new object is refused: a blob that had no records yet.
  CHECK((*kv)->Commit(Puts({{keys::Extent(2, 0), "new"}}), true).code() == Status::Code::kNoSpace);
  // In the background too: the commit returns at once, and the failure is
  // kept for that object until taken, once; the records are not there.
  REQUIRE_OK((*kv)->Commit(Puts({{keys::Extent(3, 0), "new"}, {keys::BlobEnd(3), "end"}}), false));
  CHECK((*kv)->TakeWriteFailure(keys::Extent(4, 0)).ok());
  const Status failed = (*kv)->TakeWriteFailure(keys::BlobEnd(3));
  INFO(failed.ToString());
  CHECK(failed.code() == Status::Code::kNoSpace);
  CHECK(failed.message().find(RadosKv::ExtentObject(3)) != std::string::npos);
  CHECK((*kv)->TakeWriteFailure(keys::Extent(3, 0)).ok());
  std::string value;
  CHECK((*kv)->Get(keys::Extent(3, 0), &value).code() == Status::Code::kNotFound);
  REQUIRE_OK((*blobs)->Truncate(1, 0, written));
  REQUIRE_OK((*blobs)->Sync());
}

TEST_CASE("rados blobs: holes read as zeros, Truncate across stripes, List sums stripes",
          "[rados]") {
  const std::string ns = FreshRadosNamespace();
  auto blobs = OpenBlobs(ns, SmallStripes(16, 1 << 20));
  const std::string data = Pattern(300 << 10, 3);  // stripes 0..4, the last one partly
  REQUIRE_OK(blobs->Write(5, 0, data));
  REQUIRE_OK(blobs->Write(6, 10 << 10, "x"));  // another blob, untouched by the truncates
  REQUIRE_OK(blobs->Sync());
  std::map<uint64_t, uint64_t> listed;
  REQUIRE_OK(blobs->List(&listed));
  CHECK(listed == std::map<uint64_t, uint64_t>{{5, 300 << 10}, {6, (10 << 10) + 1}});

  // A hole of one whole stripe, inside the blob.
  REQUIRE_OK(blobs->Truncate(5, 0, 0));  // end 0: nothing to do
  const uint64_t cut = (100 << 10) + 7;  // in stripe 1
  REQUIRE_OK(blobs->Truncate(5, cut, data.size()));
  librados::IoCtx io = RawIo(ns);
  uint64_t size = 0;
  time_t mtime = 0;
  REQUIRE(io.stat(RadosBlobFiles::StripeObject(5, 1), &size, &mtime) == 0);
  CHECK(size == cut - (64 << 10));
  for (uint64_t stripe = 2; stripe <= 4; ++stripe) {
    CHECK(io.stat(RadosBlobFiles::StripeObject(5, stripe), &size, &mtime) == -ENOENT);
  }
  size_t present = 0;
  std::string got = ReadBack(*blobs, 5, 0, data.size(), &present);
  CHECK(present == cut);
  CHECK(got.substr(0, cut) == data.substr(0, cut));
  CHECK(got.substr(cut) == std::string(data.size() - cut, '\0'));

  // Bytes past a missing stripe: the hole reads as zeros, below the end.
  REQUIRE_OK(blobs->Truncate(5, 0, cut));
  REQUIRE_OK(blobs->Write(5, 200 << 10, "tail"));
  got = ReadBack(*blobs, 5, 0, (200 << 10) + 4, &present);
  CHECK(present == (200 << 10) + 4);
  CHECK(got == std::string(200 << 10, '\0') + "tail");
  REQUIRE_OK(blobs->List(&listed));
  CHECK(listed[5] == (200 << 10) - (192 << 10) + 4);

  REQUIRE_OK(blobs->Truncate(5, 0, (200 << 10) + 4));
  REQUIRE_OK(blobs->List(&listed));
  CHECK(listed == std::map<uint64_t, uint64_t>{{6, (10 << 10) + 1}});
}

TEST_CASE(
    "rados store: a store outlives its process, and a second open finds the last one stopped "
    "cleanly",
    "[rados]") {
  StoreFixture fx(Backend::kRados);
  auto sink = fx.store().OpenBlob(42);
  const std::string data = Pattern(700 << 10, 4);  // three stripes of the tests' 256 KiB
  REQUIRE_OK(sink->WriteAt(0, data));
  REQUIRE_OK(fx.store().Apply(Batch(), /*sync=*/true));
  fx.Reopen();
  auto again = fx.store().OpenBlob(42);
  std::string got(data.size(), '\0');
  REQUIRE_OK(again->ReadAt(0, data.size(), got.data()));
  CHECK(got == data);
}

TEST_CASE(
    "rados store: a store of format 5 (extent keys under the old tag) is refused, naming its "
    "format",
    "[rados]") {
  const std::string ns = FreshRadosNamespace();
  {
    auto kv = OpenKv(ns);
    REQUIRE_OK(kv->Commit(
        Puts({{std::string(keys::kFormatKey), std::string(keys::kFormatExtentsAmongRecords)},
              {std::string(keys::kNextIdKey), std::string(8, '\0')}}),
        true));
  }
  auto store = OpenRadosStore(TestRadosConnection(), TestRadosPool(), ns, {});
  REQUIRE(!store.ok());
  CHECK(store.status().code() == Status::Code::kInvalidArgument);
  CHECK(store.status().message().find("'upfs-store 5'") != std::string::npos);
  // Nothing was changed: the format record is as it was.
  CHECK(ValueOf(*OpenKv(ns), std::string(keys::kFormatKey)) == keys::kFormatExtentsAmongRecords);
}

// The OSD, paused (SIGSTOP) while this lives; resumed by the destructor.
// SIGSTOPs a process for its lifetime. kill() only queues the stop: each
// thread stops when it next runs, so a thread in the middle of answering
// still answers (seen once: a read served in 0.4 ms "while paused"). The
// pause begins once every thread shows state T.
class PausedOsd {
 public:
  explicit PausedOsd(pid_t pid) : pid_(pid) {
    REQUIRE(::kill(pid_, SIGSTOP) == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!AllStopped()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~PausedOsd() { ::kill(pid_, SIGCONT); }
  PausedOsd(const PausedOsd&) = delete;
  PausedOsd& operator=(const PausedOsd&) = delete;

 private:
  // Every thread's state (the field after the parenthesized name of
  // /proc/PID/task/TID/stat) is T, stopped.
  bool AllStopped() const {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
      std::ifstream in(task.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), {});
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos || paren + 2 >= stat.size())
        continue;  // the thread just exited
      if (stat[paren + 2] != 'T') return false;
    }
    return !ec;
  }

  const pid_t pid_;
};

TEST_CASE(
    "rados: a cluster that does not answer fails requests after the timeout, and the next ones "
    "work",
    "[rados]") {
  const char* osd = std::getenv("UPFS_TEST_CEPH_OSD_PID");
  REQUIRE(osd != nullptr);  // the only OSD's PID (rados_tests.sh)
  RadosConnectOptions options;
  options.ceph_conf = std::getenv("UPFS_TEST_CEPH_CONF");
  options.timeout = std::chrono::seconds(3);
  auto conn = RadosConnection::Connect(options);
  REQUIRE_OK(conn.status());
  const std::string ns = FreshRadosNamespace();
  auto kv = RadosKv::Open(*conn, TestRadosPool(), ns);
  REQUIRE_OK(kv.status());
  auto blobs = RadosBlobFiles::Open(*conn, TestRadosPool(), ns);
  REQUIRE_OK(blobs.status());
  REQUIRE_OK((*kv)->Commit(Puts({{keys::Asset("a"), "asset"}}), true));
  REQUIRE_OK((*blobs)->Write(1, 0, "bytes"));
  REQUIRE_OK((*blobs)->Sync());
  {
    PausedOsd paused(static_cast<pid_t>(std::stoll(osd)));
    const auto start = std::chrono::steady_clock::now();
    std::string value;
    const Status got = (*kv)->Get(keys::Asset("a"), &value);
    const auto waited = std::chrono::steady_clock::now() - start;
    INFO(got.ToString());
    CHECK(got.code() == Status::Code::kIOError);
    CHECK(got.message().find("did not answer") != std::string::npos);
    CHECK(waited >= std::chrono::milliseconds(2500));
    CHECK(waited < std::chrono::seconds(20));
    // A queued write fails the same way, at the Sync.
    REQUIRE_OK((*blobs)->Write(1, 5, "more"));
    const Status synced = (*blobs)->Sync();
    INFO(synced.ToString());
    CHECK(synced.code() == Status::Code::kIOError);
  }
  std::string value;
  REQUIRE_OK((*kv)->Get(keys::Asset("a"), &value));
  CHECK(value == "asset");
  size_t present = 0;
  CHECK(ReadBack(**blobs, 1, 0, 5, &present) == "bytes");
}

}  // namespace upfs::store::testing
