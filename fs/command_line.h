// CommandLine: the upfs program's own options, parsed out of the argument
// vector before libfuse's parser (fuse_parse_cmdline) sees the rest.
//
//   upfs [options] STORE_DIR MOUNTPOINT
//   upfs [options] rados://POOL[/NAMESPACE] MOUNTPOINT
//
// The first non-option argument is the store: a directory, or a RADOS pool
// (and namespace) when it starts with rados:// (so `mount -t fuse.upfs STORE
// MNT`, which mount.fuse3 turns into `upfs STORE MNT -o OPTS`, works); the
// second, the mount point, and every option upfs does not know (-f, -d, -s,
// -o allow_other, -o max_threads=N, ...) stay in the vector for libfuse.
//
// Thread safety: functions of their arguments only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/common.h>

#include "base/status.h"
#include "fs/fuse_api.h"
#include "session/ignore_rules.h"
#include "store/leveldb_kv.h"

namespace upfs::fs {

inline constexpr int64_t kDefaultTtlSeconds = 24 * 3600;
inline constexpr int64_t kDefaultSweepIntervalSeconds = 60;
// Worker threads of the session loop. libfuse's own default (10) is set
// only when -o max_threads is absent from the command line too, so upfs
// chooses; idle threads are set explicitly as well (Debian's libfuse 3.14
// warns when the idle count is left unset).
inline constexpr unsigned kDefaultMaxThreads = 16;
inline constexpr unsigned kDefaultIdleThreads = 8;
// -o rados_timeout: as store::RadosConnectOptions' default.
inline constexpr int64_t kDefaultRadosTimeoutSeconds = 30;
// -o lease: as store::kDefaultRadosLease.
inline constexpr int64_t kDefaultLeaseSeconds = 30;
inline constexpr int64_t kDefaultHookTimeoutSeconds = 60;
inline constexpr int64_t kDefaultMetricsIntervalSeconds = 10;

inline constexpr std::string_view kRadosScheme = "rados://";

// Where a store kept in RADOS is, and how to reach the cluster.
struct RadosLocation {
  std::string pool;
  std::string ns;  // "": the pool's default namespace
  // -o ceph_conf=PATH; empty: librados' own search ($CEPH_CONF, ...).
  std::string ceph_conf;
  // -o ceph_id=NAME: the client's name without "client.".
  std::string ceph_id = "admin";
  // -o rados_timeout=SECONDS: each cluster operation's limit.
  int64_t timeout_seconds = kDefaultRadosTimeoutSeconds;
  // -o lease=SECONDS: how long this mount's lease lasts unrenewed; another
  // mount takes its sessions over after that.
  int64_t lease_seconds = kDefaultLeaseSeconds;
};

// True when `store` names a RADOS store (starts with rados://).
bool IsRadosUrl(std::string_view store);

// Parses rados://POOL[/NAMESPACE] into `out`'s pool and ns. InvalidArgument
// saying what is wrong (no pool, an empty namespace, a '/' in the
// namespace, a NUL); `out` is then unchanged.
Status ParseRadosUrl(std::string_view url, RadosLocation* out);

// Applies one "name=value" option if it is one of the RADOS ones
// (ceph_conf, ceph_id, rados_timeout): true in *taken. InvalidArgument,
// naming the option, for a bad value.
Status ParseRadosOption(std::string_view option, RadosLocation* out, bool* taken);

struct CommandLine {
  // The first non-option argument, as given.
  std::string store_dir;
  // store_dir is rados://...: then `rados` says where (and store_dir is
  // not a path).
  bool is_rados = false;
  RadosLocation rados;
  // Some RADOS option was given (an error for a directory store).
  std::string rados_option_given;
  // -o ttl=SECONDS: a session untouched this long with no open file expires.
  int64_t ttl_seconds = kDefaultTtlSeconds;
  // -o write_once: new sessions are write-once.
  bool write_once = false;
  // -o log_level=trace|debug|info|warn|error.
  spdlog::level::level_enum log_level = spdlog::level::info;
  bool log_level_given = false;
  // -o log_file=PATH. Empty: stderr in the foreground, STORE_DIR/upfs.log
  // when daemonized.
  std::string log_file;
  // -o sweep_interval=SECONDS: how often expired sessions are looked for.
  int64_t sweep_interval_seconds = kDefaultSweepIntervalSeconds;
  // -o max_threads=N was given (libfuse parses the value; it stays in args).
  bool max_threads_given = false;
  // -o reserve=BYTES: free space kept for the database (store/leveldb_kv.h).
  uint64_t reserve_bytes = store::kDefaultReserveBytes;
  // -o pre_commit=PROGRAM, -o post_commit=PROGRAM: absolute paths
  // (session/hooks.h); "" for none.
  std::string pre_commit;
  std::string post_commit;
  // -o hook_timeout=SECONDS: a hook running longer is killed.
  int64_t hook_timeout_seconds = kDefaultHookTimeoutSeconds;
  // -o worm: assets cannot be removed.
  bool worm = false;
  // -o quota=BYTES, -o max_sessions=N: per-uid limits (session/quota.h);
  // 0: none.
  uint64_t quota_bytes = 0;
  uint64_t max_sessions = 0;
  // -o metrics_file=PATH: metrics in Prometheus' text format (fs/metrics.h);
  // "" for none. -o metrics_interval=SECONDS: how often it is rewritten.
  std::string metrics_file;
  int64_t metrics_interval_seconds = kDefaultMetricsIntervalSeconds;
  // -o ignore=PATTERN[:PATTERN...]: tools' leftovers a commit leaves out
  // (session/ignore_rules.h); -o ignore= for none.
  std::vector<std::string> ignore_patterns = session::IgnoreRules::Defaults();
};

// Parses upfs's options and STORE_DIR out of `args` into `out`, leaving
// everything else in `args`. InvalidArgument, naming the option, for a
// malformed value, a malformed rados:// URL, or a RADOS option given with
// a directory store; `args` and `out` are then unspecified. (upfs exits
// with kUsageExit on these.)
Status ParseCommandLine(fuse_args* args, CommandLine* out);

// The exit status of upfs for a command line it cannot use.
inline constexpr int kUsageExit = 2;

// One option as --help and the man page upfs(8) describe it. The table of
// them (OptionTable) is also what the parser matches, so an option upfs
// takes is documented, and one it documents is taken, by construction:
// adding an option is an entry there, and a key and its case in the parser
// (command_line.cc).
struct OptionDoc {
  enum class Group {
    kUpfs,   // upfs's own -o options
    kRados,  // upfs's -o options for a rados:// store
    kFuse,   // libfuse's; --help prints libfuse's own text for them, the
             // man page this entry's
  };
  Group group;
  // "ttl" for `-o ttl=SECONDS`; a name starting with '-' is written as it
  // stands ("-f", "-d, -o debug").
  std::string_view name;
  // The value's placeholder ("SECONDS"); empty for a switch.
  std::string_view argument;
  // command_line.cc's parser key; options upfs leaves to libfuse have none.
  int key;
  // One paragraph of plain text (no markup; the man page escapes it).
  std::string_view description;
  // The default as text; empty when there is none to state.
  std::string default_value;
};

// Every option, in the order --help and the man page list them.
std::span<const OptionDoc> OptionTable();

// How the option is written: "-o ttl=SECONDS", "-o write_once", "-f".
std::string OptionSpelling(const OptionDoc& option);

// Prints the usage line and upfs's own options with their defaults (the
// first part of --help; libfuse's helpers print the rest).
void PrintUsage(std::FILE* out, const char* program);

// `value` escaped for use inside one -o option list (commas and
// backslashes are special to libfuse's option parser).
std::string EscapeOptionValue(std::string_view value);

}  // namespace upfs::fs
