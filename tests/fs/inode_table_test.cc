// InodeTable: lookup counts add up and forget to zero exactly, also under
// concurrent use.
#include "fs/inode_table.h"

#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace upfs::fs {
namespace {

TEST_CASE("InodeTable counts lookups and forgets them") {
  InodeTable table;
  table.Add(7);
  table.Add(7);
  table.Add(9, 3);
  CHECK(table.Count(7) == 2);
  CHECK(table.Count(9) == 3);
  CHECK(table.LiveCount() == 2);

  CHECK(table.Forget(7, 1) == 1);
  CHECK(table.Forget(9, 3) == 0);
  CHECK(table.LiveCount() == 1);
  CHECK(table.Forget(7, 1) == 0);
  CHECK(table.LiveCount() == 0);
  CHECK(table.Count(7) == 0);
}

TEST_CASE("InodeTable reports forgets beyond what was counted") {
  InodeTable table;
  uint64_t over = 99;
  CHECK(table.Forget(5, 2, &over) == 0);
  CHECK(over == 2);
  table.Add(5, 1);
  CHECK(table.Forget(5, 3, &over) == 0);
  CHECK(over == 2);
  CHECK(table.Forget(5, 0, &over) == 0);
  CHECK(over == 0);
  CHECK(table.LiveCount() == 0);
}

TEST_CASE("InodeTable stays exact under concurrent adds and forgets") {
  InodeTable table;
  constexpr int kThreads = 8;
  constexpr int kRounds = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&table, t] {
      for (int i = 0; i < kRounds; ++i) {
        const uint64_t id = 100 + (i + t) % 16;
        table.Add(id);
        table.Add(id);
        table.Forget(id, 1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  uint64_t total = 0;
  for (uint64_t id = 100; id < 116; ++id) total += table.Count(id);
  CHECK(total == uint64_t{kThreads} * kRounds);
}

}  // namespace
}  // namespace upfs::fs
