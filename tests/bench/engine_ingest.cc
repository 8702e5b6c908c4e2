// engine_ingest: measures the session engine alone (no FUSE) writing one
// file sequentially into a LevelDB store, then finishing it.
//
//   upfs_engine_ingest STORE_DIR [MiB=1024] [write_KiB=1024]
//
// Prints the ingest throughput, the finish latency and, for comparison in
// the same run, OpenSSL SHA-256 alone over the same bytes.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "session/engine.h"
#include "session/sha256.h"
#include "store/leveldb_kv.h"

using namespace upfs;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s STORE_DIR [MiB] [write_KiB]\n", argv[0]);
    return 2;
  }
  uint64_t mib = argc > 2 ? std::stoull(argv[2]) : 1024;
  size_t write_size = (argc > 3 ? std::stoull(argv[3]) : 1024) * 1024;
  auto store = store::OpenLevelDbStore(argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  auto engine = session::Engine::Open(std::move(store).value(), {});
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  session::Engine& e = **engine;
  std::string name = "bench-" + std::to_string(std::random_device{}());
  auto dir = e.Mkdir(session::kSessionsId, name, 0755, {0, 0});
  auto file = e.Create(dir->id, "big", 0644, {0, 0});
  auto h = e.OpenHandle(file->id, {false, true, false});
  if (!dir.ok() || !file.ok() || !h.ok()) return 1;

  std::string buf(write_size, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(buf.data() + i, &v, 8);
  }
  uint64_t total = mib << 20;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t off = 0; off < total; off += write_size) {
    buf[0] = static_cast<char>(off >> 20);  // chunks differ
    auto w = e.Write(file->id, h->handle, off, buf);
    if (!w.ok()) {
      std::fprintf(stderr, "write: %s\n", w.status().ToString().c_str());
      return 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  Status st = e.Release(file->id, h->handle);
  session::CommitInfo info;
  auto t2 = std::chrono::steady_clock::now();
  st = e.Finish(name, "", &info);
  auto t3 = std::chrono::steady_clock::now();
  if (!st.ok()) {
    std::fprintf(stderr, "finish: %s\n", st.ToString().c_str());
    return 1;
  }
  session::Sha256 sha;
  auto t4 = std::chrono::steady_clock::now();
  for (uint64_t off = 0; off < total; off += write_size) {
    buf[0] = static_cast<char>(off >> 20);
    sha.Update(buf);
  }
  std::string digest = sha.HexDigest();
  auto t5 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("engine ingest: %llu MiB in %zu KiB writes: %.2f s, %.0f MB/s\n",
              static_cast<unsigned long long>(mib), write_size / 1024, secs(t0, t1),
              total / 1e6 / secs(t0, t1));
  std::printf("finish (verify + synced commit): %.1f ms\n", secs(t2, t3) * 1e3);
  std::printf("baseline: SHA-256 alone over the same bytes: %.0f MB/s\n",
              total / 1e6 / secs(t4, t5));
  (void)digest;
  return 0;
}
