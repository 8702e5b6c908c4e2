// Tools' leftovers (IgnoreRules, Options::ignore_patterns): a commit
// leaves out a file matching a pattern unless the manifest lists it, frees
// its bytes in the commit's own write, and lists it on the asset
// (kLeftOutXattr); .status shows such files beforehand. A file that
// matches nothing is never left out.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "session/ignore_rules.h"
#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

// Fixture options with `patterns` as -o ignore.
FixtureOptions Ignoring(std::vector<std::string> patterns) {
  FixtureOptions options;
  options.engine.ignore_patterns = std::move(patterns);
  return options;
}

using upfs::testing::RandomBytes;

std::string LeftOut(EngineFixture& fx, std::string_view asset) {
  auto value = fx.engine().GetXattr(fx.AssetId(asset, ""), kLeftOutXattr);
  REQUIRE_OK(value);
  return *value;
}

// A session "s" as a user's upload with the leftovers of several tools
// beside the files meant (some of those named like leftovers, nearly).
struct UploadWithLeftovers {
  UploadWithLeftovers(EngineFixture& fx, std::mt19937_64& rng) : fx(fx) {
    id = fx.Begin("s");
    sub = fx.MakeDir(id, "sub");
    for (const char* name : {"photo.jpg", ".a.tar.gz", "notes~", ".hidden", ".lock.doc#"}) {
      kept.emplace_back(name, RandomBytes(rng, 3000));
      fx.PutFile(id, name, kept.back().second);
    }
    kept.emplace_back("sub/keep.txt", RandomBytes(rng, 100));
    fx.PutFile(sub, "keep.txt", kept.back().second);
    // rsync's temporary copy, cut off: a gap before its length. A
    // leftover is not checked for completeness.
    rsync_tmp = fx.CreateFile(id, ".photo.jpg.Ab3dE9");
    fx.WriteAt(rsync_tmp, 0, RandomBytes(rng, 200'000));
    fx.WriteAt(rsync_tmp, 400'000, "end");
    dropped.push_back(rsync_tmp);
    for (const char* name :
         {".DS_Store", "._photo.jpg", ".goutputstream-XY12ZQ", ".~lock.doc.odt#", "#draft#"}) {
      dropped.push_back(fx.PutFile(id, name, RandomBytes(rng, 5000)));
    }
    dropped.push_back(fx.PutFile(sub, ".keep.txt.swp", RandomBytes(rng, 4096)));
  }

  // The leftovers' paths, sorted, as kLeftOutXattr lists them.
  static constexpr const char* kLeftOutList =
      "#draft#\n.DS_Store\n._photo.jpg\n.goutputstream-XY12ZQ\n.photo.jpg.Ab3dE9\n.~lock.doc.odt#\n"
      "sub/.keep.txt.swp\n";

  // The asset "s" holds exactly the files meant, each intact, and the
  // leftovers are gone with their bytes.
  void CheckCommitted() {
    REQUIRE(Names(fx.engine().ReadDir(fx.AssetId("s", ""))) ==
            std::vector<std::string>{".a.tar.gz", ".hidden", ".lock.doc#", "notes~", "photo.jpg",
                                     "sub"});
    REQUIRE(Names(fx.engine().ReadDir(fx.AssetId("s", "sub"))) ==
            std::vector<std::string>{"keep.txt"});
    for (const auto& [path, data] : kept) fx.CheckAssetFile("s", path, data);
    REQUIRE(LeftOut(fx, "s") == kLeftOutList);
    for (uint64_t blob : dropped) {
      CAPTURE(blob);
      REQUIRE(fx.HasNoBytes(blob));
      store::AssetLocation loc;
      REQUIRE(fx.store().LocateId(blob, &loc).IsNotFound());
    }
    store::AssetRecord asset;
    REQUIRE_OK(fx.store().GetAsset("s", &asset));
    REQUIRE(asset.files == kept.size());
  }

  EngineFixture& fx;
  uint64_t id = 0, sub = 0, rsync_tmp = 0;
  std::vector<std::pair<std::string, std::string>> kept;
  std::vector<uint64_t> dropped;
};

}  // namespace

TEST_CASE("ignore: the default patterns match tools' leftovers and not names people give files") {
  const IgnoreRules rules(IgnoreRules::Defaults());
  for (const char* leftover :
       {".big.WfEbu7", ".a.b.c.123456", "dir/.x.Ab_-9z", ".goutputstream-ABC", ".~lock.doc#",
        ".~lock.report.odt#", ".DS_Store", "a/b/.DS_Store", "._x", "._", ".notes.txt.swp",
        "#draft#"}) {
    CAPTURE(leftover);
    REQUIRE(rules.Match(leftover) != nullptr);
  }
  for (const char* meant : {"big", "big.WfEbu7", ".big", ".a.tar.gz", ".big.WfEbu", ".big.WfEbu77",
                            "DS_Store", "x.DS_Store", "a._x", "notes~", "file.swp", ".lock.doc#",
                            "#draft", "draft#", ".DS_Store/x", "photo.jpg", ".hidden"}) {
    CAPTURE(meant);
    REQUIRE(rules.Match(meant) == nullptr);
  }
  REQUIRE(IgnoreRules().Match(".DS_Store") == nullptr);
}

TEST_CASE(
    "ignore: -o ignore lists patterns separated by ':', a '/' matches the path in the session") {
  std::vector<std::string> patterns = {"kept"};
  REQUIRE_OK(IgnoreRules::ParseList("*.part:tmp/*:.DS_Store", &patterns));
  REQUIRE(patterns == std::vector<std::string>{"*.part", "tmp/*", ".DS_Store"});
  REQUIRE(IgnoreRules::JoinList(patterns) == "*.part:tmp/*:.DS_Store");
  const IgnoreRules rules(patterns);
  REQUIRE(*rules.Match("a.part") == "*.part");
  REQUIRE(*rules.Match("deep/down/a.part") == "*.part");
  REQUIRE(*rules.Match("tmp/x") == "tmp/*");
  REQUIRE(rules.Match("tmp/y/x") == nullptr);    // '*' does not match '/'
  REQUIRE(rules.Match("sub/tmp/x") == nullptr);  // a path pattern starts at the session
  REQUIRE(rules.Match(".big.WfEbu7") == nullptr);

  REQUIRE_OK(IgnoreRules::ParseList("", &patterns));
  REQUIRE(patterns.empty());
  patterns = {"kept"};
  for (std::string_view bad :
       std::vector<std::string_view>{":", "a::b", ":a", "a:", std::string_view("a\0b", 3)}) {
    CAPTURE(bad);
    REQUIRE_CODE(IgnoreRules::ParseList(bad, &patterns), kInvalidArgument);
    REQUIRE(patterns == std::vector<std::string>{"kept"});
  }
}

TEMPLATE_TEST_CASE("ignore: .status shows the files a commit would leave out", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(41);
  UploadWithLeftovers upload(fx, rng);
  const std::string report = fx.Report("s");
  REQUIRE(Contains(report, "\nignored: 7\n"));
  REQUIRE(Contains(report, "file: .photo.jpg.Ab3dE9\n"));
  REQUIRE(Contains(report, "\nignored: .*.[!.][!.][!.][!.][!.][!.]\n"));
  REQUIRE(
      Contains(report, "file: sub/.keep.txt.swp\nlength: 4096\nreceived: 4096\nmissing: none\n"));
  REQUIRE(Contains(report, "\nignored: .*.swp\n"));
  REQUIRE(Contains(report, "\nignored: ._*\n"));
  REQUIRE(
      Contains(report, "file: photo.jpg\nlength: 3000\nreceived: 3000\nmissing: none\nsha256: "));
  // One ignored: line per leftover, one for the count.
  size_t lines = 0;
  for (size_t at = report.find("ignored: "); at != std::string::npos;
       at = report.find("ignored: ", at + 1))
    ++lines;
  REQUIRE(lines == 8);

  REQUIRE_OK(fx.engine().Unlink(upload.id, ".DS_Store"));
  REQUIRE(!Contains(fx.Report("s"), "ignored: .DS_Store"));
  EngineFixture plain(TestType::kBackend, Ignoring({}));
  plain.PutFile(plain.Begin("t"), ".DS_Store", "x");
  REQUIRE(!Contains(plain.Report("t"), "ignored"));
}

TEMPLATE_TEST_CASE(
    "ignore: an empty manifest leaves the leftovers out, frees their bytes and lists them on the "
    "asset",
    "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(42);
  UploadWithLeftovers upload(fx, rng);
  // A handle still open on a leftover: it goes all the same, as the
  // session's other files do from its handles.
  const uint64_t open_tmp = fx.OpenWrite(upload.rsync_tmp);
  SECTION("through .finish") { REQUIRE_OK(fx.FinishViaHandle(upload.id, "")); }
  SECTION("by mv into assets/") {
    REQUIRE_OK(fx.engine().Rename(kSessionsId, "s", kAssetsId, "s", false, nullptr));
  }
  upload.CheckCommitted();
  REQUIRE_CODE(fx.engine().Write(upload.rsync_tmp, open_tmp, 0, "x"), kStale);
  REQUIRE_OK(fx.engine().Release(upload.rsync_tmp, open_tmp));
  // Durable with the asset: after a restart, as it was.
  if (fx.backend() == Backend::kLevelDb) {
    fx.Reopen();
    upload.CheckCommitted();
  }
  // Read-only, as the rest of the asset.
  REQUIRE_CODE(fx.engine().SetXattr(fx.AssetId("s", ""), kLeftOutXattr, "x"), kReadOnly);
}

TEMPLATE_TEST_CASE(
    "ignore: the manifest wins: a listed leftover is committed, an unlisted one left out, an "
    "unlisted file that matches nothing still fails",
    "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(43);
  const std::string data = RandomBytes(rng, 10'000), store = RandomBytes(rng, 300),
                    tmp = RandomBytes(rng, 700);
  const uint64_t id = fx.Begin("s");
  fx.PutFile(id, "data", data);
  fx.PutFile(id, ".DS_Store", store);
  const uint64_t ftmp = fx.PutFile(id, ".data.q1W2e3", tmp);
  const uint64_t fother = fx.PutFile(id, "other", "meant");
  const std::string manifest =
      ManifestLine(Sha256::Of(data), "data") + ManifestLine(Sha256::Of(store), ".DS_Store");

  // "other" is no leftover: the manifest must list it, as before.
  REQUIRE_CODE(fx.FinishViaHandle(id, manifest), kInvalidArgument);
  REQUIRE(Contains(fx.Report("s"), "file 'other' is not listed in the manifest"));
  REQUIRE(fx.ReadAll(ftmp) == tmp);
  REQUIRE(fx.ReadAll(fother) == "meant");

  // A listed leftover with the wrong hash fails as any file would.
  REQUIRE_CODE(fx.FinishViaHandle(id, ManifestLine(Sha256::Of(data), "data") +
                                          ManifestLine(Sha256::Of("no"), ".DS_Store") +
                                          ManifestLine(Sha256::Of("meant"), "other")),
               kHashMismatch);

  REQUIRE_OK(fx.FinishViaHandle(id, manifest + ManifestLine(Sha256::Of("meant"), "other")));
  REQUIRE(Names(fx.engine().ReadDir(fx.AssetId("s", ""))) ==
          std::vector<std::string>{".DS_Store", "data", "other"});
  fx.CheckAssetFile("s", ".DS_Store", store);
  fx.CheckAssetFile("s", "data", data);
  REQUIRE(LeftOut(fx, "s") == ".data.q1W2e3\n");
  REQUIRE(fx.HasNoBytes(ftmp));
}

TEMPLATE_TEST_CASE("ignore: -o ignore replaces the defaults, an empty list leaves nothing out",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  SECTION("own patterns") {
    EngineFixture fx(TestType::kBackend, Ignoring({"*.part", "tmp/*"}));
    const uint64_t id = fx.Begin("s");
    const uint64_t tmp = fx.MakeDir(id, "tmp");
    const uint64_t sub = fx.MakeDir(id, "sub");
    const uint64_t stub = fx.MakeDir(sub, "tmp");
    fx.PutFile(id, ".DS_Store", "finder");
    const uint64_t part = fx.PutFile(sub, "a.part", "partial");
    const uint64_t scratch = fx.PutFile(tmp, "x", "scratch");
    fx.PutFile(stub, "x", "deep");
    REQUIRE(Contains(fx.Report("s"), "\nignored: 2\n"));
    REQUIRE_OK(fx.FinishViaHandle(id, ""));
    fx.CheckAssetFile("s", ".DS_Store", "finder");
    fx.CheckAssetFile("s", "sub/tmp/x", "deep");
    REQUIRE_CODE(fx.engine().Lookup(fx.AssetId("s", "sub"), "a.part"), kNotFound);
    REQUIRE(Names(fx.engine().ReadDir(fx.AssetId("s", "tmp"))).empty());  // directories stay
    REQUIRE(LeftOut(fx, "s") == "sub/a.part\ntmp/x\n");
    REQUIRE(fx.HasNoBytes(part));
    REQUIRE(fx.HasNoBytes(scratch));
  }
  SECTION("none") {
    EngineFixture fx(TestType::kBackend, Ignoring({}));
    const uint64_t id = fx.Begin("s");
    fx.PutFile(id, ".DS_Store", "finder");
    fx.PutFile(id, ".big.WfEbu7", "tmp");
    REQUIRE_OK(fx.FinishViaHandle(id, ""));
    fx.CheckAssetFile("s", ".DS_Store", "finder");
    fx.CheckAssetFile("s", ".big.WfEbu7", "tmp");
    REQUIRE_CODE(fx.engine().GetXattr(fx.AssetId("s", ""), kLeftOutXattr), kNoAttribute);
  }
}

TEMPLATE_TEST_CASE(
    "ignore: user.upfs.left_out is the commit's: a session's own is refused, a commit leaving "
    "nothing out has none",
    "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  const uint64_t id = fx.Begin("s");
  fx.PutFile(id, "a", "a");
  REQUIRE_CODE(fx.engine().SetXattr(id, kLeftOutXattr, "a\n"), kNotPermitted);
  REQUIRE_OK(fx.engine().SetXattr(id, "user.other", "kept"));
  REQUIRE_OK(fx.FinishViaHandle(id, ""));
  REQUIRE_CODE(fx.engine().GetXattr(fx.AssetId("s", ""), kLeftOutXattr), kNoAttribute);
  REQUIRE(*fx.engine().GetXattr(fx.AssetId("s", ""), "user.other") == "kept");
}

TEMPLATE_TEST_CASE("ignore: a very long list of leftovers fits one xattr, the rest counted",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  const uint64_t id = fx.Begin("s");
  const std::string stem(200, 'n');
  constexpr int kLeftovers = 400;  // 400 lines of ~212 bytes: 85 KB
  for (int i = 0; i < kLeftovers; ++i)
    fx.PutFile(id, "." + stem + std::to_string(1000 + i) + ".Ab3dE9", "");
  fx.PutFile(id, "meant", "m");
  REQUIRE_OK(fx.FinishViaHandle(id, ""));
  const std::string value = LeftOut(fx, "s");
  REQUIRE(value.size() <= 64 * 1024);
  const size_t listed = static_cast<size_t>(std::count(value.begin(), value.end(), '\n')) - 1;
  REQUIRE(listed > 200);
  REQUIRE(
      Contains(value, "\n... (" + std::to_string(kLeftovers - listed) + " more, see the log)\n"));
  REQUIRE(value.rfind("." + stem + "1000.Ab3dE9\n", 0) == 0);
}

}  // namespace upfs::session::testing
