// The upfs command line: upfs's own options and STORE_DIR come out, the
// rest is left for libfuse's parser, which must then accept it.
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fs/command_line.h"

namespace upfs::fs {
namespace {

// An argument vector libfuse may rewrite, freed at the end.
class Args {
 public:
  explicit Args(std::vector<std::string> argv) : storage_(std::move(argv)) {
    for (std::string& s : storage_) pointers_.push_back(s.data());
    args_ = FUSE_ARGS_INIT(static_cast<int>(pointers_.size()), pointers_.data());
  }
  ~Args() { fuse_opt_free_args(&args_); }
  fuse_args* get() { return &args_; }
  std::string Joined() const {
    std::string joined;
    for (int i = 0; i < args_.argc; ++i) joined += std::string(args_.argv[i]) + " ";
    return joined;
  }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> pointers_;
  fuse_args args_{};
};

TEST_CASE("upfs options and STORE_DIR are taken out; libfuse's stay") {
  Args args({"upfs", "-o", "ttl=5,write_once,allow_other", "STORE", "/tmp", "-f", "-o",
             "log_level=debug,sweep_interval=7,max_threads=4", "-o", "log_file=/x/upfs.log"});
  CommandLine cl;
  REQUIRE(ParseCommandLine(args.get(), &cl).ok());
  CHECK(cl.store_dir == "STORE");
  CHECK(cl.ttl_seconds == 5);
  CHECK(cl.write_once);
  CHECK(cl.log_level == spdlog::level::debug);
  CHECK(cl.log_level_given);
  CHECK(cl.sweep_interval_seconds == 7);
  CHECK(cl.log_file == "/x/upfs.log");
  CHECK(cl.max_threads_given);

  const std::string rest = args.Joined();
  INFO("left for libfuse: " << rest);
  CHECK(rest.find("STORE") == std::string::npos);
  CHECK(rest.find("ttl") == std::string::npos);
  CHECK(rest.find("allow_other") != std::string::npos);

  fuse_cmdline_opts opts{};
  REQUIRE(fuse_parse_cmdline(args.get(), &opts) == 0);
  CHECK(opts.foreground == 1);
  CHECK(opts.max_threads == 4);
  REQUIRE(opts.mountpoint != nullptr);
  CHECK(std::string(opts.mountpoint) == "/tmp");
  free(opts.mountpoint);
}

TEST_CASE("defaults apply when no upfs option is given") {
  Args args({"upfs", "STORE", "/tmp"});
  CommandLine cl;
  REQUIRE(ParseCommandLine(args.get(), &cl).ok());
  CHECK(cl.store_dir == "STORE");
  CHECK(cl.ttl_seconds == kDefaultTtlSeconds);
  CHECK_FALSE(cl.write_once);
  CHECK(cl.log_level == spdlog::level::info);
  CHECK_FALSE(cl.log_level_given);
  CHECK(cl.log_file.empty());
  CHECK(cl.sweep_interval_seconds == kDefaultSweepIntervalSeconds);
  CHECK_FALSE(cl.max_threads_given);
}

TEST_CASE("the mount.fuse3 form: STORE MNT -o opts") {
  Args args({"upfs", "STORE", "/tmp", "-o", "rw,ttl=60"});
  CommandLine cl;
  REQUIRE(ParseCommandLine(args.get(), &cl).ok());
  CHECK(cl.store_dir == "STORE");
  CHECK(cl.ttl_seconds == 60);
}

TEST_CASE("malformed upfs option values are refused, naming the option") {
  const char* bad[] = {"ttl=abc", "ttl=0", "ttl=-5", "ttl=10x", "sweep_interval=",
                       "log_level=loud", "log_file="};
  for (const char* option : bad) {
    INFO(option);
    Args args({"upfs", "-o", option, "STORE", "/tmp"});
    CommandLine cl;
    Status s = ParseCommandLine(args.get(), &cl);
    CHECK(s.code() == Status::Code::kInvalidArgument);
    const std::string name(option, std::string(option).find('='));
    CHECK(s.message().find(name) != std::string::npos);
  }
}

TEST_CASE("EscapeOptionValue survives libfuse's option parser") {
  CHECK(EscapeOptionValue("/plain/path") == "/plain/path");
  CHECK(EscapeOptionValue("a,b\\c") == "a\\,b\\\\c");

  Args args({"upfs", ("-ofsname=upfs:" + EscapeOptionValue("/odd,dir\\x")) + ",subtype=upfs"});
  struct Parsed {
    char* fsname = nullptr;
    char* subtype = nullptr;
  } parsed;
  const fuse_opt templates[] = {
      {"fsname=%s", offsetof(Parsed, fsname), 0},
      {"subtype=%s", offsetof(Parsed, subtype), 0},
      FUSE_OPT_END,
  };
  REQUIRE(fuse_opt_parse(args.get(), &parsed, templates, nullptr) == 0);
  REQUIRE(parsed.fsname != nullptr);
  CHECK(std::string(parsed.fsname) == "upfs:/odd,dir\\x");
  REQUIRE(parsed.subtype != nullptr);
  CHECK(std::string(parsed.subtype) == "upfs");
  free(parsed.fsname);
  free(parsed.subtype);
}

}  // namespace
}  // namespace upfs::fs
