// Bad input the engine answers with a specific code (G4; the catalogue of
// docs/semantics.md, "Bad input, case by case", on the engine's side;
// tests/integration/bad_input.sh checks the errnos on a
// real mount): the control-file names where they are no control files,
// what .finish's setattr and writes refuse, and a huge wrong manifest.
#include <sys/stat.h>

#include <string>

#include <catch2/catch.hpp>

#include "session/manifest.h"
#include "tests/session/engine_fixture.h"

namespace upfs::session::testing {

TEMPLATE_TEST_CASE("bad input: .finish and .status are refused away from a session's root",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::string_view reserved = GENERATE(kFinishName, kStatusName);
  CAPTURE(reserved);
  // A session named .finish would put its manifest at sessions/.finish/.finish.
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, reserved, kDirMode, kAlice), kInvalidArgument);
  uint64_t s = fx.Begin("s");
  uint64_t sub = fx.MakeDir(s, "sub");
  // A manifest written to sub/.finish would be an upload, not a commit.
  REQUIRE_CODE(fx.engine().Create(sub, reserved, kFileMode, kAlice), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Mkdir(sub, reserved, kDirMode, kAlice), kInvalidArgument);
  uint64_t f = fx.PutFile(s, "f", "data");
  REQUIRE_CODE(fx.engine().Rename(s, "f", sub, reserved, false, nullptr), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Rename(kSessionsId, "s", kSessionsId, reserved, false, nullptr),
               kInvalidArgument);
  // At the root they are the control files: taken, as before.
  REQUIRE_CODE(fx.engine().Create(s, reserved, kFileMode, kAlice), kExists);
  REQUIRE_CODE(fx.engine().Rename(s, "f", s, reserved, false, nullptr), kNotPermitted);
  // Names that only look alike are ordinary.
  fx.PutFile(sub, std::string(reserved) + "x", "");
  // Nothing moved, and the session still commits.
  REQUIRE(fx.Lookup(s, "f") == f);
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);
  REQUIRE_OK(fx.FinishViaHandle(s, ""));
  fx.CheckAssetFile("s", "f", "data");
}

TEMPLATE_TEST_CASE("bad input: .finish's setattr takes times and truncation to 0 only", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("s");
  uint64_t finish = fx.Lookup(s, kFinishName);
  AttrChange mode;
  mode.mode = 0777;
  REQUIRE_CODE(fx.engine().SetAttr(finish, mode), kNotPermitted);
  AttrChange owner;
  owner.uid = 0;
  REQUIRE_CODE(fx.engine().SetAttr(finish, owner), kNotPermitted);
  AttrChange grow;
  grow.size = 5;
  REQUIRE_CODE(fx.engine().SetAttr(finish, grow), kInvalidArgument);
  AttrChange fine;
  fine.size = 0;
  fine.mtime_ns = 12345;
  auto attr = fx.engine().SetAttr(finish, fine);
  REQUIRE_OK(attr);
  REQUIRE(attr->mode == (S_IFREG | 0200));
}

TEMPLATE_TEST_CASE("bad input: a write past the end of .finish's manifest is refused", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("s");
  fx.PutFile(s, "a", "alpha");
  uint64_t finish = fx.Lookup(s, kFinishName);
  uint64_t h = fx.OpenWrite(finish);
  const std::string line = Sha256::Of("alpha") + "  a\n";
  // A hole would be NULs no manifest holds (and memory for bytes never sent).
  REQUIRE_CODE(fx.engine().Write(finish, h, 1, line), kInvalidArgument);
  // The refused write spoils that handle: its close fails, commits nothing
  // (not even as an empty manifest would), and later writes fail alike.
  REQUIRE_CODE(fx.engine().Flush(finish, h, nullptr), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Write(finish, h, 0, line), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Release(finish, h), kInvalidArgument);
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);
  REQUIRE_CODE(fx.engine().Lookup(kAssetsId, "s"), kNotFound);
  // With nothing written at all, a refused write still commits nothing.
  h = fx.OpenWrite(finish);
  REQUIRE_CODE(fx.engine().Write(finish, h, kMaxManifestBytes, "x"), kTooLarge);
  REQUIRE_CODE(fx.engine().Release(finish, h), kTooLarge);
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);
  // A new handle, written in order (rewriting what is there), commits.
  h = fx.OpenWrite(finish);
  fx.Write(finish, h, 0, line.substr(0, 10));
  fx.Write(finish, h, 5, line.substr(5));
  REQUIRE_OK(fx.engine().Flush(finish, h, nullptr));
  REQUIRE_OK(fx.engine().Release(finish, h));
  fx.CheckAssetFile("s", "a", "alpha");
}

TEST_CASE("bad input: ParseManifest stops after max_lines lines", "[manifest]") {
  const std::string line = Sha256::Of("x") + "  f\n";
  std::string text;
  for (int i = 0; i < 1000; ++i) text += line;
  text += "garbage after the limit\n";
  auto first = ParseManifest(text, 2);
  REQUIRE_OK(first);
  REQUIRE(first->size() == 2);
  REQUIRE((*first)[1].line_number == 2);
  auto all = ParseManifest(text);
  REQUIRE_CODE(all, kInvalidArgument);
  REQUIRE(Contains(all.status().message(), "line 1001"));
}

TEMPLATE_TEST_CASE(
    "bad input: a manifest of many more lines than files fails on the first extra line", "[engine]",
    MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("s");
  fx.PutFile(s, "f", "x");
  const std::string line = Sha256::Of("x") + "  f\n";
  std::string text;
  for (int i = 0; i < 100000; ++i) text += line;
  // Line 2 is the first that cannot be right (the session has one file);
  // a malformed line far beyond it is never reached.
  text += "not a manifest line\n";
  Status st = fx.engine().Finish("s", text, nullptr);
  REQUIRE_CODE(st, kInvalidArgument);
  INFO(st.ToString());
  REQUIRE(Contains(st.message(), "line 2"));
  REQUIRE(Contains(st.message(), "second time"));
  REQUIRE(Contains(fx.Report("s"), "line 2"));
  REQUIRE_OK(fx.engine().Finish("s", line, nullptr));
  fx.CheckAssetFile("s", "f", "x");
}

}  // namespace upfs::session::testing
