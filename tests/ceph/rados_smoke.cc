// rados_smoke: checks that librados, as the RADOS backend will use it, works
// against a cluster (tests/ceph/smoke.sh starts one with cluster.sh).
//
//   upfs_rados_smoke CONF ID POOL      (CONF "" = librados' default search)
//
// Checks, each printed as one line: a 1 MiB object written and read back;
// one ObjectWriteOperation that writes an object's bytes, 100 omap keys and
// an xattr together; that a compound operation which fails (exclusive create
// of an existing object) changes nothing; listing and point reads of omap
// keys. Exits 0 when every check held, 1 at the first that did not.
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>

#include "tests/ceph/rados_pool.h"

namespace {

using librados::bufferlist;
using upfs::testing::RadosError;

bufferlist RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  bufferlist bl;
  bl.append(s);
  return bl;
}

std::map<std::string, bufferlist> OmapKeys(int n, const std::string& value_prefix) {
  std::map<std::string, bufferlist> keys;
  for (int i = 0; i < n; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "extent.%08d", i);
    keys[key].append(value_prefix + std::to_string(i));
  }
  return keys;
}

// Smoke: one check after another; the first failure ends the run.
class Smoke {
 public:
  explicit Smoke(librados::IoCtx& io) : io_(io) {}

  // Returns an empty string when every check held, else what failed.
  std::string Run() {
    std::string err;
    if (!(err = WriteRead()).empty()) return err;
    if (!(err = CompoundWrite()).empty()) return err;
    if (!(err = FailedCompoundChangesNothing()).empty()) return err;
    if (!(err = OmapReads()).empty()) return err;
    return Cleanup();
  }

 private:
  static constexpr const char* kData = "upfs-smoke.data";
  static constexpr const char* kRecord = "upfs-smoke.record";

  void Ok(const std::string& what) { std::printf("rados_smoke: ok: %s\n", what.c_str()); }

  std::string WriteRead() {
    // IoCtx::write_full takes the buffer's contents (it is empty afterwards).
    bufferlist in = RandomBytes(1 << 20, 1);
    int rc = io_.write_full(kData, in);
    if (rc < 0) return RadosError("write_full 1 MiB", rc);
    bufferlist out;
    rc = io_.read(kData, out, 2 << 20, 0);
    if (rc < 0) return RadosError("read 1 MiB", rc);
    if (!out.contents_equal(RandomBytes(1 << 20, 1)))
      return "read 1 MiB: the bytes differ from those written";
    Ok("1 MiB object written and read back");
    return {};
  }

  std::string CompoundWrite() {
    bufferlist bytes = RandomBytes(4096, 2);
    bufferlist version;
    version.append("1");
    librados::ObjectWriteOperation op;
    op.create(true);
    op.write_full(bytes);
    op.omap_set(OmapKeys(100, "v1."));
    op.setxattr("upfs.version", version);
    int rc = io_.operate(kRecord, &op);
    if (rc < 0) return RadosError("operate(create, write_full, omap_set 100, setxattr)", rc);

    bufferlist out;
    rc = io_.read(kRecord, out, 8192, 0);
    if (rc < 0) return RadosError("read record", rc);
    if (!out.contents_equal(bytes)) return "compound write: the object's bytes differ";
    bufferlist x;
    rc = io_.getxattr(kRecord, "upfs.version", x);
    if (rc < 0) return RadosError("getxattr", rc);
    if (x.to_str() != "1") return "compound write: xattr upfs.version is '" + x.to_str() + "'";
    Ok("one ObjectWriteOperation wrote bytes, 100 omap keys and an xattr");
    return {};
  }

  std::string FailedCompoundChangesNothing() {
    librados::ObjectWriteOperation op;
    op.create(true);  // the object exists: the whole operation must fail
    op.write_full(RandomBytes(4096, 3));
    op.omap_set(OmapKeys(100, "v2."));
    int rc = io_.operate(kRecord, &op);
    if (rc != -EEXIST)
      return RadosError("exclusive create of an existing object (want EEXIST)", rc);
    std::map<std::string, bufferlist> vals;
    rc = io_.omap_get_vals_by_keys(kRecord, {"extent.00000042"}, &vals);
    if (rc < 0) return RadosError("omap_get_vals_by_keys", rc);
    if (vals["extent.00000042"].to_str() != "v1.42") {
      return "a failed compound operation changed omap key extent.00000042 to '" +
             vals["extent.00000042"].to_str() + "'";
    }
    bufferlist out;
    rc = io_.read(kRecord, out, 8192, 0);
    if (rc < 0) return RadosError("read record", rc);
    if (!out.contents_equal(RandomBytes(4096, 2)))
      return "a failed compound operation changed the bytes";
    Ok("a compound operation that fails (EEXIST) changes neither bytes nor omap");
    return {};
  }

  std::string OmapReads() {
    std::map<std::string, bufferlist> all;
    std::string after;
    bool more = true;
    while (more) {
      std::map<std::string, bufferlist> page;
      int rc = io_.omap_get_vals2(kRecord, after, 64, &page, &more);
      if (rc < 0) return RadosError("omap_get_vals2", rc);
      if (page.empty()) break;
      after = page.rbegin()->first;
      all.merge(page);
    }
    if (all.size() != 100) return "omap listing: " + std::to_string(all.size()) + " keys, want 100";
    if (all.begin()->first != "extent.00000000" || all.rbegin()->first != "extent.00000099") {
      return "omap listing: keys out of order";
    }
    Ok("omap listing in pages of 64 returns the 100 keys in order");
    return {};
  }

  std::string Cleanup() {
    for (const char* oid : {kData, kRecord}) {
      int rc = io_.remove(oid);
      if (rc < 0) return RadosError(std::string("remove ") + oid, rc);
    }
    Ok("objects removed");
    return {};
  }

  librados::IoCtx& io_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CONF ID POOL   (CONF \"\": librados' default search)\n",
                 argv[0]);
    return 2;
  }
  upfs::testing::RadosPool pool;
  std::string err = pool.Open(argv[1], argv[2], argv[3]);
  if (err.empty()) err = Smoke(pool.io()).Run();
  if (!err.empty()) {
    std::fprintf(stderr, "rados_smoke: FAIL: %s\n", err.c_str());
    return 1;
  }
  std::printf("rados_smoke: all checks passed\n");
  return 0;
}
