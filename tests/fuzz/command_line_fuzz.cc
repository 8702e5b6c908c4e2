// libFuzzer target: fs::ParseCommandLine over fuse_opt_parse, the parser of
// upfs's argv and -o option lists (also what mount.fuse3 passes from an
// fstab line). The input is split at NUL bytes into arguments after
// "upfs". A parse either succeeds, leaving a non-empty STORE_DIR when one
// was given, or fails with InvalidArgument; the option values it keeps are
// in range.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fs/command_line.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMaxArgs = 64;
  std::vector<std::string> words{"upfs"};
  std::string current;
  for (size_t i = 0; i < size && words.size() < kMaxArgs; ++i) {
    if (data[i] == 0) {
      words.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  if (words.size() < kMaxArgs) words.push_back(std::move(current));
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(words.size()), argv.data());
  upfs::fs::CommandLine line;
  upfs::Status st = upfs::fs::ParseCommandLine(&args, &line);
  if (st.ok()) {
    FUZZ_CHECK(line.ttl_seconds >= 1);
    FUZZ_CHECK(line.sweep_interval_seconds >= 1);
    // Seconds become int64 nanoseconds in the engine.
    FUZZ_CHECK(line.ttl_seconds <= INT64_MAX / 1'000'000'000);
    FUZZ_CHECK(line.sweep_interval_seconds <= INT64_MAX / 1'000'000'000);
  } else {
    FUZZ_CHECK(st.code() == upfs::Status::Code::kInvalidArgument);
  }
  // What stays for libfuse is a well-formed argument vector.
  for (int i = 0; i < args.argc; ++i) FUZZ_CHECK(args.argv[i] != nullptr);
  fuse_opt_free_args(&args);
  return 0;
}
