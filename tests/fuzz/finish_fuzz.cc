// libFuzzer target: a manifest written to `.finish`, through the engine
// (Engine::Finish over the in-memory store), so the checks after parsing
// (paths against the session's tree, duplicates, unlisted files,
// directories, hashes) see arbitrary bytes too. Each input gets a fresh
// engine with one session:
//
//   a                 "alpha\n"
//   dir/b             "bravo\n"
//   dir/sub/empty     (0 bytes)
//   odd name\\x\n\xff  "odd\n"    (space, backslash, newline, non-UTF-8)
//
// Invariants: a finish either commits (the asset is there, the session is
// gone) or fails with one of the manifest's errors and leaves the session
// exactly as it was, so an empty manifest then commits it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "session/clock.h"
#include "session/engine.h"
#include "store/kv_store.h"
#include "store/memory_kv.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using upfs::Result;
using upfs::Status;
using namespace upfs::session;

constexpr Caller kCaller{1000, 1000};

std::unique_ptr<Engine> NewEngine() {
  auto store = upfs::store::KvStore::Open(std::make_unique<upfs::store::MemoryKv>(),
                                          std::make_unique<upfs::store::MemoryBlobFiles>(), true);
  FUZZ_CHECK(store.ok());
  Options options;
  options.clock = std::make_shared<ManualClock>();
  auto engine = Engine::Open(std::move(store).value(), std::move(options));
  FUZZ_CHECK(engine.ok());
  return std::move(engine).value();
}

uint64_t Must(Result<Attr> attr) {
  if (!attr.ok()) std::fprintf(stderr, "%s\n", attr.status().ToString().c_str());
  FUZZ_CHECK(attr.ok());
  return attr->id;
}

void Put(Engine& e, uint64_t parent, std::string_view name, std::string_view bytes) {
  const uint64_t id = Must(e.Create(parent, name, 0644, kCaller));
  auto h = e.OpenHandle(id, OpenMode{false, true, false});
  FUZZ_CHECK(h.ok());
  if (!bytes.empty()) FUZZ_CHECK(e.Write(id, h->handle, 0, bytes).ok());
  FUZZ_CHECK(e.Release(id, h->handle).ok());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // one commit per input: keep stderr for findings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<Engine> engine = NewEngine();
  Engine& e = *engine;
  const uint64_t root = Must(e.Mkdir(kSessionsId, "s", 0755, kCaller));
  Put(e, root, "a", "alpha\n");
  const uint64_t dir = Must(e.Mkdir(root, "dir", 0755, kCaller));
  Put(e, dir, "b", "bravo\n");
  const uint64_t sub = Must(e.Mkdir(dir, "sub", 0755, kCaller));
  Put(e, sub, "empty", "");
  Put(e, root, "odd name\\x\n\xff", "odd\n");

  const std::string_view manifest(reinterpret_cast<const char*>(data), size);
  CommitInfo info;
  Status st = e.Finish("s", manifest, &info);
  if (st.ok()) {
    FUZZ_CHECK(info.name == "s");
    FUZZ_CHECK(e.Lookup(kAssetsId, "s").ok());
    FUZZ_CHECK(!e.Lookup(kSessionsId, "s").ok());
    return 0;
  }
  FUZZ_CHECK(st.code() == Status::Code::kInvalidArgument ||
             st.code() == Status::Code::kHashMismatch);
  // The session is untouched: still open, same tree, and it commits.
  FUZZ_CHECK(e.Lookup(kSessionsId, "s").ok());
  FUZZ_CHECK(e.Lookup(sub, "empty").ok());
  FUZZ_CHECK(e.StatusReport("s").ok());
  FUZZ_CHECK(e.Finish("s", "", &info).ok());
  FUZZ_CHECK(e.Lookup(kAssetsId, "s").ok());
  return 0;
}
