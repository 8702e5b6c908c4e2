#include "fs/fsck_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "fs/command_line.h"
#include "session/sha256.h"
#include "store/fsck.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/rados_backend.h"

namespace upfs::fs {
namespace {

constexpr const char* kUsage =
    "usage: upfs fsck [--remove-orphans] STORE_DIR\n"
    "       upfs fsck [--remove-orphans] [-o ceph_conf=PATH,ceph_id=NAME,rados_timeout=S]\n"
    "                 rados://POOL[/NAMESPACE]\n"
    "Checks an unmounted upfs store: rehashes every committed file against its\n"
    "recorded SHA-256 and checks the index against the stored chunks.\n"
    "  --remove-orphans  delete chunks no committed file or open session owns\n"
    "  -o OPTIONS        for a rados:// store, as for mounting it (upfs --help)\n"
    "Exit status: 0 clean, 1 problems found, 2 usage or open error.\n";

// The session layer's Sha256 behind store/'s hashing interface.
class SessionSha256 : public store::FsckHasher {
 public:
  void Update(std::string_view bytes) override { sha_.Update(bytes); }
  std::string HexDigest() override { return sha_.HexDigest(); }

 private:
  session::Sha256 sha_;
};

// Opens the store at `dir` without creating anything.
Result<std::unique_ptr<store::KvStore>> OpenOffline(const std::string& dir) {
  namespace stdfs = std::filesystem;
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec)) return Status::NotFound(dir + " is not a directory");
  const std::string db = (stdfs::path(dir) / "db").string();
  if (!stdfs::is_directory(db, ec))
    return Status::InvalidArgument(dir + " is not a upfs store (it has no db/)");
  auto kv = store::OpenLevelDbKv(db, /*create=*/false);
  if (!kv.ok()) {
    if (kv.status().IsBusy()) {
      return Status::Busy("store " + dir + " is in use by a running upfs; unmount it first (" +
                          kv.status().message() + ")");
    }
    return kv.status();
  }
  UPFS_ASSIGN_OR_RETURN(auto blobs,
                        store::DirBlobFiles::Open((stdfs::path(dir) / "blobs").string()));
  auto opened = store::KvStore::Open(std::move(kv).value(), std::move(blobs), /*create=*/false);
  if (!opened.ok()) return opened.status().WithContext(dir);
  return std::move(opened).value();
}

// Parses one -o list (comma-separated; no escapes) of RADOS options.
Status ParseFsckOptions(std::string_view list, RadosLocation* out, std::string* given) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view option = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (option.empty()) continue;
    bool taken = false;
    UPFS_RETURN_IF_ERROR(ParseRadosOption(option, out, &taken));
    if (!taken) return Status::InvalidArgument("unknown option -o " + std::string(option));
    *given = std::string(option.substr(0, option.find('=')));
  }
  return Status::OK();
}

Result<std::unique_ptr<store::KvStore>> OpenStore(const std::string& store,
                                                  const RadosLocation& rados) {
  if (!IsRadosUrl(store)) return OpenOffline(store);
  store::RadosConnectOptions options;
  options.ceph_conf = rados.ceph_conf;
  options.ceph_id = rados.ceph_id;
  options.timeout = std::chrono::seconds(rados.timeout_seconds);
  return store::OpenRadosBackendOffline(rados.pool, rados.ns, options);
}

}  // namespace

int RunFsck(int argc, char** argv) {
  bool remove_orphans = false;
  std::string dir;
  RadosLocation rados;
  std::string rados_option;  // the last one given
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!options_done && (arg == "-h" || arg == "--help")) {
      std::fputs(kUsage, stdout);
      return kFsckClean;
    }
    if (!options_done && arg == "--remove-orphans") {
      remove_orphans = true;
    } else if (!options_done && arg.substr(0, 2) == "-o") {
      std::string_view list = arg.substr(2);
      if (list.empty()) {
        if (i + 1 == argc) {
          std::fprintf(stderr, "upfs fsck: -o needs options\n%s", kUsage);
          return kFsckUsage;
        }
        list = argv[++i];
      }
      const Status s = ParseFsckOptions(list, &rados, &rados_option);
      if (!s.ok()) {
        std::fprintf(stderr, "upfs fsck: %s\n%s", s.message().c_str(), kUsage);
        return kFsckUsage;
      }
    } else if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && arg.size() > 1 && arg[0] == '-') {
      std::fprintf(stderr, "upfs fsck: unknown option '%s'\n%s", argv[i], kUsage);
      return kFsckUsage;
    } else if (dir.empty()) {
      dir = arg;
    } else {
      std::fprintf(stderr, "upfs fsck: more than one STORE_DIR ('%s', '%s')\n%s", dir.c_str(),
                   argv[i], kUsage);
      return kFsckUsage;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "upfs fsck: missing STORE_DIR\n%s", kUsage);
    return kFsckUsage;
  }

  if (IsRadosUrl(dir)) {
    const Status s = ParseRadosUrl(dir, &rados);
    if (!s.ok()) {
      std::fprintf(stderr, "upfs fsck: %s\n%s", s.message().c_str(), kUsage);
      return kFsckUsage;
    }
  } else if (!rados_option.empty()) {
    std::fprintf(stderr, "upfs fsck: -o %s is for a rados:// store, not the directory %s\n%s",
                 rados_option.c_str(), dir.c_str(), kUsage);
    return kFsckUsage;
  }
  auto opened = OpenStore(dir, rados);
  if (!opened.ok()) {
    std::fprintf(stderr, "upfs fsck: cannot open store %s: %s\n", dir.c_str(),
                 opened.status().ToString().c_str());
    return kFsckUsage;
  }
  store::FsckOptions options;
  options.new_sha256 = [] { return std::make_unique<SessionSha256>(); };
  options.remove_orphans = remove_orphans;
  auto report = store::CheckStore(**opened, options);
  if (!report.ok()) {
    std::fprintf(stderr, "upfs fsck: %s: %s\n", dir.c_str(), report.status().ToString().c_str());
    // Orphan removal failed part way: what it had removed stays removed,
    // but the store was not checked to the end of a repair.
    return kFsckProblems;
  }
  for (const store::FsckProblem& p : report->problems) std::printf("%s\n", p.ToString().c_str());
  std::printf("upfs fsck %s: %s: %s\n", store::EscapeBytes(dir).c_str(),
              report->clean() ? "clean" : "PROBLEMS FOUND", report->Summary().c_str());
  std::fflush(stdout);
  return report->clean() ? kFsckClean : kFsckProblems;
}

}  // namespace upfs::fs
