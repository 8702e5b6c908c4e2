// -o reserve=BYTES: the free space kept for the database
// (docs/store.md, "A full disk, and damaged data"; store/leveldb_kv.h).
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fs/command_line.h"

namespace upfs::fs {
namespace {

Status Parse(const std::string& option, CommandLine* cl) {
  std::vector<std::string> storage{"upfs", "-o", option, "STORE", "/mnt"};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  Status st = ParseCommandLine(&args, cl);
  fuse_opt_free_args(&args);
  return st;
}

}  // namespace

TEST_CASE("-o reserve takes a byte count with an optional K, M, G or T suffix") {
  CommandLine defaults;
  CHECK(defaults.reserve_bytes == store::kDefaultReserveBytes);
  CHECK(store::kDefaultReserveBytes == uint64_t{512} << 20);
  for (auto [text, bytes] :
       std::vector<std::pair<std::string, uint64_t>>{{"0", 0},
                                                     {"4096", 4096},
                                                     {"64K", 64 << 10},
                                                     {"300M", uint64_t{300} << 20},
                                                     {"2G", uint64_t{2} << 30},
                                                     {"1t", uint64_t{1} << 40}}) {
    INFO("reserve=" << text);
    CommandLine cl;
    Status st = Parse("reserve=" + text, &cl);
    INFO(st.ToString());
    REQUIRE(st.ok());
    CHECK(cl.reserve_bytes == bytes);
  }
}

TEST_CASE("-o reserve refuses what is not a byte count, naming the option") {
  for (std::string bad :
       {"", "M", "-1", "1.5G", "12Q", "10MB", "99999999999999999999", "8388608T"}) {
    INFO("reserve=" << bad);
    CommandLine cl;
    Status st = Parse("reserve=" + bad, &cl);
    REQUIRE(st.code() == Status::Code::kInvalidArgument);
    CHECK(st.message().find("-o reserve=") != std::string::npos);
  }
}

}  // namespace upfs::fs
