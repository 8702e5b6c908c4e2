// The store backends tests run on, as values (Backend) and as types for
// Catch2's TEMPLATE_TEST_CASE (MemoryBackend, LevelDbBackend, RadosBackend:
// a test case reads TestType::kBackend). Each fixture opens a store on the
// backend it is given (tests/store/store_fixture.h,
// tests/session/engine_fixture.h, the fsck tests' TestStore).
#pragma once

namespace upfs::testing {

enum class Backend {
  kMemory,   // the in-memory Kv and blob files
  kLevelDb,  // LevelDB in a temporary directory, blob files beside it
  kRados,    // a RADOS pool of the test cluster (label rados only)
};

struct MemoryBackend {
  static constexpr Backend kBackend = Backend::kMemory;
};
struct LevelDbBackend {
  static constexpr Backend kBackend = Backend::kLevelDb;
};
struct RadosBackend {
  static constexpr Backend kBackend = Backend::kRados;
};

}  // namespace upfs::testing
