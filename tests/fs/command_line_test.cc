// The upfs command line: upfs's own options and STORE_DIR come out, the
// rest is left for libfuse's parser, which must then accept it.
#include "fs/command_line.h"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

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

// The command line must be refused with InvalidArgument, saying `what`.
void CheckRefused(const std::vector<std::string>& argv, const std::string& what) {
  Args args(argv);
  INFO(args.Joined());
  CommandLine cl;
  Status s = ParseCommandLine(args.get(), &cl);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find(what) != std::string::npos);
}

// "ttl" of "ttl=abc".
std::string NameOf(const std::string& option) { return option.substr(0, option.find('=')); }

TEST_CASE("upfs options and STORE_DIR are taken out: libfuse's stay") {
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
  const char* bad[] = {"ttl=abc",         "ttl=0",          "ttl=-5",   "ttl=10x",
                       "sweep_interval=", "log_level=loud", "log_file="};
  for (const char* option : bad)
    CheckRefused({"upfs", "-o", option, "STORE", "/tmp"}, NameOf(option));
}

TEST_CASE("a rados:// store and its options, in the mount.fuse3 form too") {
  Args args({"upfs", "rados://uploads/team-a", "/tmp", "-o",
             "rw,ceph_conf=/etc/ceph/x.conf,ceph_id=upfs,rados_timeout=5,allow_other"});
  CommandLine cl;
  REQUIRE(ParseCommandLine(args.get(), &cl).ok());
  CHECK(cl.store_dir == "rados://uploads/team-a");
  CHECK(cl.is_rados);
  CHECK(cl.rados.pool == "uploads");
  CHECK(cl.rados.ns == "team-a");
  CHECK(cl.rados.ceph_conf == "/etc/ceph/x.conf");
  CHECK(cl.rados.ceph_id == "upfs");
  CHECK(cl.rados.timeout_seconds == 5);
  const std::string rest = args.Joined();
  INFO("left for libfuse: " << rest);
  CHECK(rest.find("ceph") == std::string::npos);
  CHECK(rest.find("rados") == std::string::npos);
  CHECK(rest.find("allow_other") != std::string::npos);
  CHECK(rest.find(" /tmp ") != std::string::npos);
}

TEST_CASE("rados:// defaults: the default namespace, librados' search, admin, 30 s") {
  Args args({"upfs", "rados://pool", "/tmp"});
  CommandLine cl;
  REQUIRE(ParseCommandLine(args.get(), &cl).ok());
  CHECK(cl.is_rados);
  CHECK(cl.rados.pool == "pool");
  CHECK(cl.rados.ns.empty());
  CHECK(cl.rados.ceph_conf.empty());
  CHECK(cl.rados.ceph_id == "admin");
  CHECK(cl.rados.timeout_seconds == kDefaultRadosTimeoutSeconds);

  Args dir({"upfs", "rados-like-dir", "/tmp"});
  CommandLine dir_cl;
  REQUIRE(ParseCommandLine(dir.get(), &dir_cl).ok());
  CHECK_FALSE(dir_cl.is_rados);
}

TEST_CASE("malformed rados:// URLs are refused, saying what is wrong") {
  const std::pair<const char*, const char*> bad[] = {
      {"rados://", "no pool"},
      {"rados:///x", "no pool"},
      {"rados://pool/", "empty namespace"},
      {"rados://pool/a/b", "cannot contain '/'"},
  };
  for (const auto& [url, why] : bad) {
    CheckRefused({"upfs", url, "/tmp"}, why);
    CheckRefused({"upfs", url, "/tmp"}, url);
  }
}

TEST_CASE("malformed RADOS options, and RADOS options with a directory store, are refused") {
  const char* bad[] = {"ceph_conf=",      "ceph_id=",          "ceph_id=client.admin",
                       "rados_timeout=0", "rados_timeout=abc", "rados_timeout=86401"};
  for (const char* option : bad) {
    CheckRefused({"upfs", "-o", option, "rados://pool", "/tmp"}, NameOf(option));
  }
  CheckRefused({"upfs", "-o", "ceph_id=upfs", "STORE", "/tmp"},
               "-o ceph_id is for a rados:// store");
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

// What PrintUsage prints.
std::string UsageText() {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  REQUIRE(out != nullptr);
  PrintUsage(out, "upfs");
  std::fclose(out);
  std::string text(buffer, size);
  std::free(buffer);
  return text;
}

// `text` with every run of white space (a line break and the next line's
// indentation too) as one space.
std::string OneLine(const std::string& text) {
  std::string joined;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n';
    if (space && !joined.empty() && joined.back() == ' ') continue;
    joined += space ? ' ' : c;
  }
  return joined;
}

TEST_CASE("the option table names each option once and describes it") {
  std::set<std::string> names;
  for (const OptionDoc& option : OptionTable()) {
    INFO(option.name);
    CHECK(names.insert(std::string(option.name)).second);
    CHECK_FALSE(option.description.empty());
    CHECK(option.description.find('\n') == std::string_view::npos);
  }
}

TEST_CASE("every upfs option of the table is parsed, and libfuse's left to libfuse") {
  for (const OptionDoc& option : OptionTable()) {
    if (option.name.substr(0, 1) == "-") continue;  // a flag: libfuse's
    const std::string name(option.name);
    const std::string given = name + (option.argument.empty() ? "" : "=1");
    Args args({"upfs", "-o", given});
    INFO(given);
    CommandLine cl;
    const Status s = ParseCommandLine(args.get(), &cl);
    if (option.group == OptionDoc::Group::kFuse) {
      CHECK(s.ok());
      CHECK(args.Joined().find(name) != std::string::npos);
    } else if (s.ok()) {
      // Taken out, or (max_threads) noted and left to libfuse too.
      CHECK((args.Joined().find(name) == std::string::npos || cl.max_threads_given));
    } else {
      CHECK(s.message().find("-o " + name + "=1") != std::string::npos);
    }
  }
}

TEST_CASE("--help lists every upfs option of the table with its default, in 79 columns") {
  const std::string usage = UsageText();
  const std::string joined = OneLine(usage);
  for (const OptionDoc& option : OptionTable()) {
    const std::string spelled = OptionSpelling(option);
    INFO(spelled);
    const bool listed = usage.find("\n    " + spelled + " ") != std::string::npos ||
                        usage.find("\n    " + spelled + "\n") != std::string::npos;
    // libfuse prints its own options after upfs's.
    CHECK(listed == (option.group != OptionDoc::Group::kFuse));
    if (listed) {
      CHECK(joined.find(OneLine(std::string(option.description))) != std::string::npos);
      if (!option.default_value.empty()) {
        CHECK(joined.find("(default: " + option.default_value + ")") != std::string::npos);
      }
    }
  }
  size_t line_start = 0;
  for (size_t end = usage.find('\n'); end != std::string::npos;
       end = usage.find('\n', line_start)) {
    INFO(usage.substr(line_start, end - line_start));
    CHECK(end - line_start <= 79);
    line_start = end + 1;
  }
  CHECK(usage.find("    -o ttl=SECONDS         a session untouched") != std::string::npos);
}

}  // namespace
}  // namespace upfs::fs
