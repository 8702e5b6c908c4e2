// rados_latency: the latency of the single RADOS operations a store built
// on librados would issue, one at a time (no concurrency), to size its
// design (tests/ceph/NOTES.md; tests/ceph/measure.sh runs it).
//
//   upfs_rados_latency CONF ID POOL [ROUNDS=200]
//
// Prints a markdown table, one row per operation: ROUNDS synchronous calls
// (a quarter as many 4 MiB writes), min, median, p99 and max in
// microseconds. Removes every object it wrote. Exits 1 at the
// first failed call.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/ceph/rados_pool.h"

namespace {

using librados::bufferlist;
using upfs::testing::RadosError;

bufferlist Bytes(size_t n) {
  bufferlist bl;
  bl.append(std::string(n, 'x'));
  return bl;
}

std::string Key(int i) {
  char key[48];
  std::snprintf(key, sizeof key, "extent.%016d.%08d", i / 7, i);  // ~32 bytes, as a record key
  return key;
}

std::map<std::string, bufferlist> OmapEntries(int first, int n) {
  std::map<std::string, bufferlist> m;
  for (int i = first; i < first + n; ++i) m[Key(i)] = Bytes(64);  // ~ an extent record
  return m;
}

class LatencyRun {
 public:
  LatencyRun(librados::IoCtx& io, int rounds) : io_(io), rounds_(rounds) {}

  // Times OP (given the round number) ROUNDS times (the run's if 0) and
  // prints the summary.
  // Returns false (after printing the error) if a call failed.
  bool Measure(const std::string& name, const std::function<int(int)>& op, int rounds = 0) {
    if (rounds == 0) rounds = rounds_;
    std::vector<double> us;
    us.reserve(rounds);
    for (int i = 0; i < rounds; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      int rc = op(i);
      auto t1 = std::chrono::steady_clock::now();
      if (rc < 0) {
        std::fprintf(stderr, "rados_latency: %s\n", RadosError(name, rc).c_str());
        return false;
      }
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    std::sort(us.begin(), us.end());
    std::printf("| %-44s | %8.0f | %8.0f | %8.0f | %8.0f |\n", name.c_str(), us.front(),
                us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], us.back());
    std::fflush(stdout);
    return true;
  }

  bool All() {
    std::printf("| %-44s | %8s | %8s | %8s | %8s |\n", "operation (synchronous, one at a time)",
                "min us", "median", "p99", "max");
    std::printf("|%s|---------:|---------:|---------:|---------:|\n", std::string(46, '-').c_str());
    // IoCtx::write_full empties the buffer it is given: each call gets a
    // copy (which shares the bytes).
    const bufferlist small = Bytes(4096);
    const bufferlist big = Bytes(4 << 20);
    const int big_rounds = std::max(1, rounds_ / 4);  // a memstore OSD holds 1 GiB

    // Setup: one object holding 1000 omap keys and an xattr.
    librados::ObjectWriteOperation setup;
    setup.write_full(small);
    setup.omap_set(OmapEntries(0, 1000));
    setup.setxattr("upfs.version", Bytes(16));
    int rc = io_.operate("lat.index", &setup);
    if (rc < 0) return Fail("setup lat.index", rc);

    bool ok =
        Measure("write_full 4 KiB, new object",
                [&](int i) {
                  bufferlist bl = small;
                  return io_.write_full(Obj("lat.w", i), bl);
                }) &&
        Measure(
            "write_full 4 MiB, new object",
            [&](int i) {
              bufferlist bl = big;
              return io_.write_full(Obj("lat.big", i), bl);
            },
            big_rounds) &&
        Measure("read 4 KiB",
                [&](int i) {
                  bufferlist out;
                  return io_.read(Obj("lat.w", i), out, 4096, 0);
                }) &&
        Measure("omap_set 1 key (existing object)",
                [&](int i) { return io_.omap_set("lat.index", OmapEntries(100000 + i, 1)); }) &&
        Measure("write 4 KiB + omap_set 100 keys, one op",
                [&](int i) {
                  librados::ObjectWriteOperation op;
                  op.write_full(small);
                  op.omap_set(OmapEntries(0, 100));
                  return io_.operate(Obj("lat.op", i), &op);
                }) &&
        Measure("omap_get_vals_by_keys 1 key (of 1000+)",
                [&](int i) {
                  std::map<std::string, bufferlist> vals;
                  return io_.omap_get_vals_by_keys("lat.index", {Key(i % 1000)}, &vals);
                }) &&
        Measure("omap_get_vals2 list 1000 keys (one call)",
                [&](int) {
                  std::map<std::string, bufferlist> vals;
                  bool more = false;
                  int r = io_.omap_get_vals2("lat.index", "", 1000, &vals, &more);
                  return r < 0 ? r : (vals.size() == 1000 ? 0 : -EIO);
                }) &&
        Measure("getxattr",
                [&](int) {
                  bufferlist out;
                  return io_.getxattr("lat.index", "upfs.version", out);
                }) &&
        Measure("stat", [&](int i) {
          uint64_t size = 0;
          time_t mtime = 0;
          return io_.stat(Obj("lat.w", i), &size, &mtime);
        });
    return Cleanup() && ok;
  }

 private:
  static std::string Obj(const char* prefix, int i) {
    return std::string(prefix) + "." + std::to_string(i);
  }

  bool Fail(const std::string& what, int rc) {
    std::fprintf(stderr, "rados_latency: %s\n", RadosError(what, rc).c_str());
    return false;
  }

  bool Cleanup() {
    bool ok = true;
    for (const char* prefix : {"lat.w", "lat.big", "lat.op"}) {
      for (int i = 0; i < rounds_; ++i) {
        int rc = io_.remove(Obj(prefix, i));
        if (rc < 0 && rc != -ENOENT) ok = Fail("remove " + Obj(prefix, i), rc);
      }
    }
    int rc = io_.remove("lat.index");
    if (rc < 0) ok = Fail("remove lat.index", rc);
    return ok;
  }

  librados::IoCtx& io_;
  const int rounds_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: %s CONF ID POOL [ROUNDS]\n", argv[0]);
    return 2;
  }
  int rounds = argc == 5 ? std::stoi(argv[4]) : 200;
  upfs::testing::RadosPool pool;
  std::string err = pool.Open(argv[1], argv[2], argv[3]);
  if (!err.empty()) {
    std::fprintf(stderr, "rados_latency: %s\n", err.c_str());
    return 1;
  }
  return LatencyRun(pool.io(), rounds).All() ? 0 : 1;
}
