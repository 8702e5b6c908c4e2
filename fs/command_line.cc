#include "fs/command_line.h"

#include <charconv>
#include <exception>
#include <limits>

namespace upfs::fs {
namespace {

enum Key {
  kKeyTtl,
  kKeyWriteOnce,
  kKeyLogLevel,
  kKeyLogFile,
  kKeySweepInterval,
  kKeyMaxThreads,
  kKeyReserve,
  kKeyRados,
  kKeyPreCommit,
  kKeyPostCommit,
  kKeyHookTimeout,
};

// Templates ending in '=' match any value; the handler gets the whole
// "name=value" and parses it, so a bad value is reported by name.
const fuse_opt kUpfsOptions[] = {
    FUSE_OPT_KEY("ttl=", kKeyTtl),
    FUSE_OPT_KEY("write_once", kKeyWriteOnce),
    FUSE_OPT_KEY("log_level=", kKeyLogLevel),
    FUSE_OPT_KEY("log_file=", kKeyLogFile),
    FUSE_OPT_KEY("sweep_interval=", kKeySweepInterval),
    FUSE_OPT_KEY("max_threads=", kKeyMaxThreads),
    FUSE_OPT_KEY("reserve=", kKeyReserve),
    FUSE_OPT_KEY("ceph_conf=", kKeyRados),
    FUSE_OPT_KEY("ceph_id=", kKeyRados),
    FUSE_OPT_KEY("rados_timeout=", kKeyRados),
    FUSE_OPT_KEY("lease=", kKeyRados),
    FUSE_OPT_KEY("pre_commit=", kKeyPreCommit),
    FUSE_OPT_KEY("post_commit=", kKeyPostCommit),
    FUSE_OPT_KEY("hook_timeout=", kKeyHookTimeout),
    FUSE_OPT_END,
};

struct ParseState {
  CommandLine* out;
  Status error;
};

std::string_view ValueOf(std::string_view arg) {
  const size_t eq = arg.find('=');
  return eq == std::string_view::npos ? std::string_view() : arg.substr(eq + 1);
}

// A whole number of seconds in [1, max].
Status ParseSeconds(std::string_view option, std::string_view value, int64_t max, int64_t* out) {
  int64_t n = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, n);
  if (ec != std::errc() || ptr != end || n < 1 || n > max) {
    return Status::InvalidArgument("-o " + std::string(option) + "=" + std::string(value) +
                                   ": expected a whole number of seconds from 1 to " +
                                   std::to_string(max));
  }
  *out = n;
  return Status::OK();
}

// A byte count: digits with an optional K, M, G or T suffix (powers of 1024).
Status ParseBytes(std::string_view option, std::string_view value, uint64_t* out) {
  uint64_t n = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, n);
  int shift = 0;
  if (ec == std::errc() && ptr + 1 == end) {
    switch (*ptr) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: shift = -1;
    }
    ptr += shift >= 0 ? 1 : 0;
  }
  if (ec != std::errc() || ptr != end || shift < 0 || n > (uint64_t{1} << (62 - shift))) {
    return Status::InvalidArgument("-o " + std::string(option) + "=" + std::string(value) +
                                   ": expected a byte count such as 268435456, 512M or 2G");
  }
  *out = n << shift;
  return Status::OK();
}

// A hook: an absolute path (the daemon's working directory is "/" once it
// daemonizes, so a relative one would change meaning).
Status ParseProgram(std::string_view option, std::string_view value, std::string* out) {
  if (value.empty() || value[0] != '/') {
    return Status::InvalidArgument("-o " + std::string(option) + "=" + std::string(value) +
                                   ": expected the absolute path of a program");
  }
  *out = std::string(value);
  return Status::OK();
}

Status ParseLogLevel(std::string_view value, spdlog::level::level_enum* out) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},
  };
  for (const auto& [name, level] : kLevels) {
    if (value == name) {
      *out = level;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("-o log_level=" + std::string(value) +
                                 ": expected trace, debug, info, warn or error");
}

}  // namespace

bool IsRadosUrl(std::string_view store) { return store.substr(0, kRadosScheme.size()) == kRadosScheme; }

Status ParseRadosUrl(std::string_view url, RadosLocation* out) {
  const auto bad = [url](std::string_view why) {
    return Status::InvalidArgument(std::string(url) + ": " + std::string(why) +
                                   " (expected rados://POOL or rados://POOL/NAMESPACE)");
  };
  if (!IsRadosUrl(url)) return bad("not a rados:// URL");
  if (url.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  const std::string_view rest = url.substr(kRadosScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view pool = rest.substr(0, slash);
  if (pool.empty()) return bad("no pool name");
  std::string_view ns;
  if (slash != std::string_view::npos) {
    ns = rest.substr(slash + 1);
    if (ns.empty()) return bad("empty namespace after '/'");
    if (ns.find('/') != std::string_view::npos) return bad("a namespace cannot contain '/'");
  }
  out->pool = std::string(pool);
  out->ns = std::string(ns);
  return Status::OK();
}

Status ParseRadosOption(std::string_view option, RadosLocation* out, bool* taken) {
  const size_t eq = option.find('=');
  const std::string_view name = option.substr(0, eq);
  const std::string_view value = ValueOf(option);
  *taken = true;
  if (name == "ceph_conf") {
    if (value.empty()) return Status::InvalidArgument("-o ceph_conf= needs a path");
    out->ceph_conf = std::string(value);
    return Status::OK();
  }
  if (name == "ceph_id") {
    if (value.empty() || value.substr(0, 7) == "client.") {
      return Status::InvalidArgument("-o ceph_id=" + std::string(value) +
                                     ": expected a client name without 'client.' (e.g. admin)");
    }
    out->ceph_id = std::string(value);
    return Status::OK();
  }
  if (name == "rados_timeout") {
    // librados takes the limit in whole seconds; a day is plenty.
    return ParseSeconds("rados_timeout", value, 24 * 3600, &out->timeout_seconds);
  }
  if (name == "lease") {
    // Renewed every third of it: 3 s is the least that leaves room.
    UPFS_RETURN_IF_ERROR(ParseSeconds("lease", value, 24 * 3600, &out->lease_seconds));
    if (out->lease_seconds < 3) return Status::InvalidArgument("-o lease=" + std::string(value) + ": at least 3 seconds");
    return Status::OK();
  }
  *taken = false;
  return Status::OK();
}

namespace {

Status Handle(ParseState& state, std::string_view arg, int key) {
  CommandLine& out = *state.out;
  // Seconds are turned into nanoseconds for the engine; stay clear of
  // int64 overflow (this is still ~292 years).
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000;
  switch (key) {
    case FUSE_OPT_KEY_NONOPT:
      if (arg.empty()) return Status::InvalidArgument("STORE_DIR is empty");
      out.store_dir = std::string(arg);
      out.is_rados = IsRadosUrl(arg);
      return out.is_rados ? ParseRadosUrl(arg, &out.rados) : Status::OK();
    case kKeyRados: {
      bool taken = false;
      out.rados_option_given = std::string(arg.substr(0, arg.find('=')));
      return ParseRadosOption(arg, &out.rados, &taken);
    }
    case kKeyTtl:
      return ParseSeconds("ttl", ValueOf(arg), kMaxSeconds, &out.ttl_seconds);
    case kKeyWriteOnce:
      out.write_once = true;
      return Status::OK();
    case kKeyLogLevel:
      out.log_level_given = true;
      return ParseLogLevel(ValueOf(arg), &out.log_level);
    case kKeyLogFile:
      if (ValueOf(arg).empty()) return Status::InvalidArgument("-o log_file= needs a path");
      out.log_file = std::string(ValueOf(arg));
      return Status::OK();
    case kKeySweepInterval:
      return ParseSeconds("sweep_interval", ValueOf(arg), kMaxSeconds,
                          &out.sweep_interval_seconds);
    case kKeyMaxThreads:
      out.max_threads_given = true;
      return Status::OK();
    case kKeyReserve:
      return ParseBytes("reserve", ValueOf(arg), &out.reserve_bytes);
    case kKeyPreCommit:
      return ParseProgram("pre_commit", ValueOf(arg), &out.pre_commit);
    case kKeyPostCommit:
      return ParseProgram("post_commit", ValueOf(arg), &out.post_commit);
    case kKeyHookTimeout:
      return ParseSeconds("hook_timeout", ValueOf(arg), 24 * 3600, &out.hook_timeout_seconds);
    default:
      return Status::OK();
  }
}

// fuse_opt_parse's callback: 0 drops the argument, 1 keeps it for libfuse,
// -1 stops parsing. Called from C: nothing may be thrown through it.
int HandleArgument(void* data, const char* arg, int key, fuse_args* /*outargs*/) {
  auto& state = *static_cast<ParseState*>(data);
  try {
    // STORE_DIR is upfs's; the mount point (and any stray extra argument,
    // which libfuse then rejects) is libfuse's.
    if (key == FUSE_OPT_KEY_NONOPT && !state.out->store_dir.empty()) return 1;
    state.error = Handle(state, arg, key);
    if (!state.error.ok()) return -1;
    // Unknown options are libfuse's; max_threads is both (upfs only notes
    // that it was given).
    return key == FUSE_OPT_KEY_OPT || key == kKeyMaxThreads ? 1 : 0;
  } catch (const std::exception& e) {
    state.error = Status::InvalidArgument(e.what());
    return -1;
  }
}

}  // namespace

Status ParseCommandLine(fuse_args* args, CommandLine* out) {
  ParseState state{out, Status::OK()};
  if (fuse_opt_parse(args, &state, kUpfsOptions, HandleArgument) != 0) {
    if (!state.error.ok()) return state.error;
    return Status::InvalidArgument("cannot parse the command line");
  }
  if (!out->rados_option_given.empty() && !out->store_dir.empty() && !out->is_rados) {
    return Status::InvalidArgument("-o " + out->rados_option_given +
                                   " is for a rados:// store, not the directory " + out->store_dir);
  }
  return Status::OK();
}

void PrintUsage(std::FILE* out, const char* program) {
  std::fprintf(out,
               "usage: %s [options] STORE_DIR MOUNTPOINT\n"
               "       %s [options] rados://POOL[/NAMESPACE] MOUNTPOINT\n"
               "\n"
               "Mounts the upfs store in STORE_DIR (created if missing), or in a RADOS\n"
               "pool (and namespace; created in it if missing), at MOUNTPOINT:\n"
               "sessions/ takes uploads, assets/ holds what was committed. Daemonizes once\n"
               "mounted unless -f (or -d) is given. Unmount with fusermount3 -u MOUNTPOINT.\n"
               "\n"
               "upfs options:\n"
               "    -o ttl=SECONDS         a session untouched this long, with no open file,\n"
               "                           expires and its data is freed (default: %lld)\n"
               "    -o write_once          new sessions are write-once: rewriting a range\n"
               "                           with the same bytes succeeds, with different bytes\n"
               "                           fails with EPERM (default: off). Per session:\n"
               "                           setfattr -n user.upfs.write_once -v 1 (or 0)\n"
               "                           sessions/NAME\n"
               "    -o log_level=LEVEL     trace, debug, info, warn or error\n"
               "                           (default: info; debug with -d)\n"
               "    -o log_file=PATH       where the log goes (default: stderr with -f;\n"
               "                           when daemonized STORE_DIR/upfs.log, or syslog\n"
               "                           (the journal) for a rados:// store)\n"
               "    -o sweep_interval=SECONDS\n"
               "                           how often expired sessions are looked for\n"
               "                           (default: %lld)\n"
               "    -o max_threads=N       worker threads (libfuse option; upfs default: %u)\n"
               "    -o reserve=BYTES       free space kept for the database on the store's\n"
               "                           file system: upload writes fail with ENOSPC\n"
               "                           below it, finishing and aborting still work\n"
               "                           (K, M, G suffixes; default: %lluM; directory\n"
               "                           stores only)\n"
               "    -o pre_commit=PROGRAM  run during every finish once the files are\n"
               "                           verified; an exit other than 0 refuses the\n"
               "                           commit (EPERM) (default: none)\n"
               "    -o post_commit=PROGRAM run after every commit, at least once, across\n"
               "                           crashes; retried until it exits 0 (default: none)\n"
               "    -o hook_timeout=SECONDS\n"
               "                           a hook running longer is killed (a refusal for\n"
               "                           pre_commit) (default: %lld)\n"
               "\n"
               "rados:// store options:\n"
               "    -o ceph_conf=PATH      Ceph configuration file (default: librados'\n"
               "                           search: $CEPH_CONF, /etc/ceph/ceph.conf, ...)\n"
               "    -o ceph_id=NAME        client name without 'client.' (default: admin)\n"
               "    -o rados_timeout=SECONDS\n"
               "                           a cluster operation that takes longer fails\n"
               "                           (EIO) instead of hanging (default: %lld)\n"
               "    -o lease=SECONDS       this mount's lease on the store, renewed every\n"
               "                           third of it; once it runs out another mount\n"
               "                           takes over its sessions (default: %lld)\n"
               "\n"
               "upfs always adds -o default_permissions (the kernel enforces file modes)\n"
               "and -o fsname=upfs:STORE_DIR,subtype=upfs.\n"
               "\n",
               program, program, static_cast<long long>(kDefaultTtlSeconds),
               static_cast<long long>(kDefaultSweepIntervalSeconds), kDefaultMaxThreads,
               static_cast<unsigned long long>(store::kDefaultReserveBytes >> 20),
               static_cast<long long>(kDefaultHookTimeoutSeconds),
               static_cast<long long>(kDefaultRadosTimeoutSeconds), static_cast<long long>(kDefaultLeaseSeconds));
}

std::string EscapeOptionValue(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    if (c == ',' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return escaped;
}

}  // namespace upfs::fs
