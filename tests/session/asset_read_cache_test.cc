// AssetReadCache: reads of committed files go through a small shared cache
// of 1 MiB windows (session/asset_read_cache.h).
#include "session/asset_read_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace upfs::session {
namespace {

// A file of `size` known bytes that counts its reads and can be told to fail.
class CountingSink : public store::ByteSink {
 public:
  explicit CountingSink(size_t size) : bytes_(size, '\0') {
    for (size_t i = 0; i < size; ++i) bytes_[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  }
  Status WriteAt(uint64_t, std::string_view) override { return Status::ReadOnly("immutable"); }
  Status ReadAt(uint64_t offset, size_t n, char* out) const override {
    ++reads;
    if (fail) return Status::IOError("injected read failure");
    if (damaged >= offset && damaged < offset + n)
      return Status::Corruption("damaged byte in range");
    // No Catch assertion here: loads ahead call this from their own threads.
    if (offset + n > bytes_.size()) return Status::InvalidArgument("read past the end of the file");
    std::memcpy(out, bytes_.data() + offset, n);
    return Status::OK();
  }
  Status Extents(std::vector<store::Extent>* out) const override {
    *out = {{0, bytes_.size()}};
    return Status::OK();
  }
  const std::string& bytes() const { return bytes_; }

  mutable std::atomic<int> reads{0};
  std::atomic<bool> fail{false};
  uint64_t damaged = UINT64_MAX;  // reads covering this byte fail

 private:
  std::string bytes_;
};

constexpr size_t kMiB = size_t{1} << 20;

TEST_CASE(
    "asset reads return the file's bytes at any offset and size, across windows and at the end") {
  const size_t size = 3 * kMiB + 12345;  // a short last window
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache;
  for (auto [offset, n] : std::vector<std::pair<uint64_t, size_t>>{{0, 1},
                                                                   {kMiB - 7, 14},
                                                                   {kMiB / 2, 2 * kMiB},
                                                                   {3 * kMiB, 12345},
                                                                   {size - 1, 1},
                                                                   {0, size}}) {
    std::string out(n, '\0');
    REQUIRE(cache.Read(7, sink_ptr, size, offset, n, out.data()).ok());
    CHECK(out == sink.bytes().substr(offset, n));
  }
}

TEST_CASE("sequential 128 KiB reads load each 1 MiB window from the store once") {
  const size_t size = 4 * kMiB;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache;
  std::string out(128 << 10, '\0');
  for (uint64_t off = 0; off < size; off += out.size()) {
    REQUIRE(cache.Read(9, sink_ptr, size, off, out.size(), out.data()).ok());
    REQUIRE(out == sink.bytes().substr(off, out.size()));
  }
  CHECK(sink.reads == 4);
}

TEST_CASE("concurrent readers of one window load it once") {
  const size_t size = kMiB;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache;
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::string out(128 << 10, '\0');
      uint64_t off = static_cast<uint64_t>(t) * out.size();
      if (!cache.Read(3, sink_ptr, size, off, out.size(), out.data()).ok() ||
          out != sink.bytes().substr(off, out.size())) {
        ++wrong;
      }
    });
  }
  for (auto& r : readers) r.join();
  CHECK(wrong == 0);
  CHECK(sink.reads == 1);
}

TEST_CASE("a failed read is reported and not cached: files with other ids are not mixed up") {
  const size_t size = kMiB;
  auto a_ptr = std::make_shared<CountingSink>(size),
       b_ptr = std::make_shared<CountingSink>(2 * kMiB);
  CountingSink &a = *a_ptr, &b = *b_ptr;
  AssetReadCache cache;
  std::string out(4096, '\0');
  a.fail = true;
  CHECK(cache.Read(1, a_ptr, size, 0, out.size(), out.data()).code() == Status::Code::kIOError);
  CHECK(a.reads == 2);  // the window, then the range alone
  a.fail = false;
  REQUIRE(cache.Read(1, a_ptr, size, 0, out.size(), out.data()).ok());
  CHECK(out == a.bytes().substr(0, out.size()));
  REQUIRE(cache.Read(2, b_ptr, 2 * kMiB, 0, out.size(), out.data()).ok());
  CHECK(out == b.bytes().substr(0, out.size()));
  CHECK(a.reads == 3);
}

TEST_CASE("damage in a window fails only the reads that touch it") {
  const size_t size = 2 * kMiB;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  sink.damaged = 100;
  AssetReadCache cache;
  std::string out(4096, '\0');
  CHECK(cache.Read(4, sink_ptr, size, 0, out.size(), out.data()).code() ==
        Status::Code::kCorruption);
  REQUIRE(cache.Read(4, sink_ptr, size, kMiB / 2, out.size(), out.data()).ok());
  CHECK(out == sink.bytes().substr(kMiB / 2, out.size()));
  REQUIRE(cache.Read(4, sink_ptr, size, kMiB + 5, out.size(), out.data()).ok());
  CHECK(out == sink.bytes().substr(kMiB + 5, out.size()));
}

TEST_CASE(
    "pinned pieces stay valid and unchanged after their window falls out of the cache, and its "
    "buffer is kept for windows to come once unpinned") {
  const size_t size = 3 * AssetReadCache::kWindows * kMiB;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache(/*readahead=*/0);
  size_t spares_before_unpin = 0;
  {
    // Across windows 0 and 1: two pieces.
    AssetReadCache::Pinned pinned;
    REQUIRE(cache.Pin(9, sink_ptr, size, kMiB - 100, 300, &pinned).ok());
    REQUIRE(pinned.pieces().size() == 2);
    CHECK(pinned.pieces()[0].size() == 100);
    CHECK(pinned.pieces()[1].size() == 200);
    // Every other window of the file passes through the cache meanwhile,
    // into the buffers of windows that fell out: none of them is a pinned
    // one.
    std::string out(1, '\0');
    for (size_t w = 2; w < 3 * AssetReadCache::kWindows; ++w)
      REQUIRE(cache.Read(9, sink_ptr, size, w * kMiB, 1, out.data()).ok());
    std::string joined;
    for (std::string_view piece : pinned.pieces()) joined.append(piece);
    CHECK(joined == sink.bytes().substr(kMiB - 100, 300));
    spares_before_unpin = cache.SpareBuffers();
  }
  // Unpinned, the two windows' buffers are kept for windows to come.
  CHECK(cache.SpareBuffers() == spares_before_unpin + 2);
  AssetReadCache::Pinned again;
  REQUIRE(cache.Pin(9, sink_ptr, size, 0, 10, &again).ok());
  CHECK(again.pieces().at(0) == sink.bytes().substr(0, 10));
}

TEST_CASE("the cache keeps at most kWindows windows") {
  const size_t size = (AssetReadCache::kWindows + 1) * kMiB;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache(/*readahead=*/0);  // counts the reader's own loads
  std::string out(1, '\0');
  for (size_t w = 0; w <= AssetReadCache::kWindows; ++w) {
    REQUIRE(cache.Read(5, sink_ptr, size, w * kMiB, 1, out.data()).ok());
  }
  // Window 0 was the least recent when window kWindows came in.
  REQUIRE(cache.Read(5, sink_ptr, size, 0, 1, out.data()).ok());
  CHECK(sink.reads == static_cast<int>(AssetReadCache::kWindows) + 2);
}

TEST_CASE("windows loaded into the buffers of windows that fell out hold their own bytes") {
  // Three passes over a file of 3 x kWindows windows, the last window
  // short: every window after the first kWindows reuses a buffer, and the
  // short one must not show the tail of the buffer's earlier window.
  const size_t size = 3 * AssetReadCache::kWindows * kMiB - 1000;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache;
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t at = 0; at < size; at += 300 * 1024) {
      const size_t n = std::min<uint64_t>(300 * 1024, size - at);
      std::string out(n, '\x55');
      REQUIRE(cache.Read(9, sink_ptr, size, at, n, out.data()).ok());
      INFO("pass " << pass << ", read at " << at);
      REQUIRE(out == sink.bytes().substr(at, n));
    }
  }
}

// Polls `done` for up to 10 s.
template <typename F>
bool WaitFor(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST_CASE("a sequential reader's next windows are loaded ahead, each once") {
  const size_t size = 12 * kMiB + 100;
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache;
  std::string out(128 << 10, '\0');
  REQUIRE(cache.Read(6, sink_ptr, size, 0, out.size(), out.data()).ok());
  // Window 0 by the reader, windows 1-8 ahead of it, with no more reads.
  CHECK(WaitFor([&] { return sink.reads == 1 + static_cast<int>(AssetReadCache::kReadahead); }));
  for (uint64_t off = 0; off < size; off += out.size()) {
    const size_t n = std::min<uint64_t>(out.size(), size - off);
    REQUIRE(cache.Read(6, sink_ptr, size, off, n, out.data()).ok());
    REQUIRE(out.compare(0, n, sink.bytes(), off, n) == 0);
  }
  CHECK(sink.reads == 13);  // every window once, the short last one too
}

TEST_CASE(
    "windows of the store's read size (a 4 MiB RADOS stripe): each loaded once, 4 ahead, 8 "
    "cached") {
  const size_t window = 4 * kMiB;
  const size_t size = 3 * AssetReadCache::kMinWindows * window - 5000;  // a short last window
  auto sink_ptr = std::make_shared<CountingSink>(size);
  CountingSink& sink = *sink_ptr;
  AssetReadCache cache(AssetReadCache::kReadahead, window);
  std::string out(128 << 10, '\0');
  REQUIRE(cache.Read(8, sink_ptr, size, 0, out.size(), out.data()).ok());
  // Window 0 by the reader, half the cache's 8 windows ahead of it.
  CHECK(
      WaitFor([&] { return sink.reads == 1 + static_cast<int>(AssetReadCache::kMinWindows / 2); }));
  for (uint64_t off = 0; off < size; off += out.size()) {
    const size_t n = std::min<uint64_t>(out.size(), size - off);
    REQUIRE(cache.Read(8, sink_ptr, size, off, n, out.data()).ok());
    REQUIRE(out.compare(0, n, sink.bytes(), off, n) == 0);
  }
  const int windows = static_cast<int>((size + window - 1) / window);
  CHECK(sink.reads == windows);
  // The first window fell out long ago (8 are kept): read again, loaded again.
  REQUIRE(cache.Read(8, sink_ptr, size, 0, out.size(), out.data()).ok());
  CHECK(WaitFor([&] { return sink.reads > windows; }));
}

// A file whose reads wait until released, counting how many wait at once.
class GatedSink : public CountingSink {
 public:
  using CountingSink::CountingSink;
  Status ReadAt(uint64_t offset, size_t n, char* out) const override {
    {
      std::unique_lock lock(mu_);
      ++waiting;
      cv_.wait(lock, [&] { return open_; });
      --waiting;
    }
    return CountingSink::ReadAt(offset, n, out);
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int Waiting() const {
    std::lock_guard lock(mu_);
    return waiting;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int waiting = 0;
  bool open_ = false;
};

TEST_CASE(
    "parallel: windows ahead of an asset reader are loaded at once: a cache destroyed meanwhile "
    "waits for them") {
  const size_t size = 10 * kMiB;
  auto sink = std::make_shared<GatedSink>(size);
  {
    AssetReadCache cache;
    std::string out(4096, '\0');
    std::thread reader([&] { CHECK(cache.Read(8, sink, size, 0, out.size(), out.data()).ok()); });
    // The reader's window 0 and the 8 windows ahead, all waiting at once:
    // one store round trip for nine windows (RADOS: tests/bench/rados_bench.sh).
    CHECK(WaitFor(
        [&] { return sink->Waiting() == 1 + static_cast<int>(AssetReadCache::kReadahead); }));
    sink->Open();
    reader.join();
    CHECK(out == sink->bytes().substr(0, out.size()));
  }
  CHECK(sink->reads == 9);
  CHECK(sink.use_count() == 1);  // the loads ahead let go of the file
}

}  // namespace
}  // namespace upfs::session
