#include "fs/fsck_command.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "session/sha256.h"
#include "store/fsck.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"

namespace upfs::fs {
namespace {

constexpr const char* kUsage =
    "usage: upfs fsck [--remove-orphans] STORE_DIR\n"
    "Checks an unmounted upfs store: rehashes every committed file against its\n"
    "recorded SHA-256 and checks the index against the stored chunks.\n"
    "  --remove-orphans  delete chunks no committed file or open session owns\n"
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
    if (kv.status().code() == Status::Code::kBusy) {
      return Status::Busy("store " + dir + " is in use by a running upfs; unmount it first (" +
                          kv.status().message() + ")");
    }
    return kv.status();
  }
  auto blobs = store::DirBlobFiles::Open((stdfs::path(dir) / "blobs").string());
  if (!blobs.ok()) return blobs.status();
  auto opened = store::KvStore::Open(std::move(kv).value(), std::move(blobs).value(), /*create=*/false);
  if (!opened.ok()) return opened.status().WithContext(dir);
  return std::move(opened).value();
}

}  // namespace

int RunFsck(int argc, char** argv) {
  bool remove_orphans = false;
  std::string dir;
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!options_done && (arg == "-h" || arg == "--help")) {
      std::fputs(kUsage, stdout);
      return kFsckClean;
    }
    if (!options_done && arg == "--remove-orphans") {
      remove_orphans = true;
    } else if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && arg.size() > 1 && arg[0] == '-') {
      std::fprintf(stderr, "upfs fsck: unknown option '%s'\n%s", argv[i], kUsage);
      return kFsckUsage;
    } else if (dir.empty()) {
      dir = arg;
    } else {
      std::fprintf(stderr, "upfs fsck: more than one STORE_DIR ('%s', '%s')\n%s", dir.c_str(), argv[i],
                   kUsage);
      return kFsckUsage;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "upfs fsck: missing STORE_DIR\n%s", kUsage);
    return kFsckUsage;
  }

  auto opened = OpenOffline(dir);
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
