#include "fs/command_line.h"

#include <charconv>
#include <exception>
#include <limits>
#include <vector>

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
  kKeyQuota,
  kKeyMaxSessions,
  kKeyWorm,
  kKeyMetricsFile,
  kKeyMetricsInterval,
  kKeyIgnore,
  kKeyLibfuse,  // not matched by upfs: libfuse's option, documented only
};

// The ignore patterns for --help, a space between them (the option takes
// them joined by ':'), so --help can wrap the list.
std::string IgnoreListText(const std::vector<std::string>& patterns) {
  std::string text;
  for (const std::string& p : patterns) text += (text.empty() ? "" : " ") + p;
  return text.empty() ? "none" : text;
}

}  // namespace

// The option table: --help, the man page and the parser's templates (below)
// all come from here. Defaults are read from CommandLine's own.
std::span<const OptionDoc> OptionTable() {
  using Group = OptionDoc::Group;
  static const CommandLine defaults;
  static const OptionDoc kTable[] = {
      {Group::kUpfs, "ttl", "SECONDS", kKeyTtl,
       "a session untouched this long, with no open file, expires and its data is freed",
       std::to_string(defaults.ttl_seconds)},
      {Group::kUpfs, "write_once", "", kKeyWriteOnce,
       "new sessions are write-once (one session: setfattr -n user.upfs.write_once -v 1, or 0, "
       "sessions/NAME): rewriting a range with the same bytes succeeds, with different bytes "
       "fails with EPERM",
       "off"},
      {Group::kUpfs, "log_level", "LEVEL", kKeyLogLevel, "trace, debug, info, warn or error",
       "info; debug with -d"},
      {Group::kUpfs, "log_file", "PATH", kKeyLogFile, "where the log goes",
       "stderr with -f; when daemonized STORE_DIR/upfs.log, or syslog (the journal) for a "
       "rados:// store"},
      {Group::kUpfs, "sweep_interval", "SECONDS", kKeySweepInterval,
       "how often expired sessions are looked for",
       std::to_string(defaults.sweep_interval_seconds)},
      {Group::kUpfs, "max_threads", "N", kKeyMaxThreads,
       "worker threads; a libfuse option, whose default upfs sets",
       std::to_string(kDefaultMaxThreads)},
      {Group::kUpfs, "reserve", "BYTES", kKeyReserve,
       "free space kept for the database on the store's file system, in bytes with an optional "
       "K, M, G or T suffix (directory stores only): upload writes fail with ENOSPC below it; "
       "finishing and aborting still work",
       std::to_string(defaults.reserve_bytes >> 20) + "M"},
      {Group::kUpfs, "worm", "", kKeyWorm,
       "write once, read many: no asset can be removed (rm -r and rmdir fail with EROFS); "
       "without it, rm -r assets/NAME or rmdir assets/NAME by the asset's owner or root "
       "removes the whole asset at once",
       "off"},
      {Group::kUpfs, "pre_commit", "PROGRAM", kKeyPreCommit,
       "an absolute path: run during every finish once the files are verified, before the "
       "commit; an exit other than 0 refuses it (EPERM, its first line of stderr in .status)",
       "none"},
      {Group::kUpfs, "post_commit", "PROGRAM", kKeyPostCommit,
       "an absolute path: run after every commit, at least once across crashes, retried with "
       "backoff until it exits 0",
       "none"},
      {Group::kUpfs, "hook_timeout", "SECONDS", kKeyHookTimeout,
       "a hook running longer is killed with its process group (a refusal for pre_commit)",
       std::to_string(defaults.hook_timeout_seconds)},
      {Group::kUpfs, "quota", "BYTES", kKeyQuota,
       "bytes the open sessions of one uid (their owner) may hold, with an optional K, M, G or T "
       "suffix; past it writes fail with EDQUOT; committed assets and root do not count",
       "none"},
      {Group::kUpfs, "max_sessions", "N", kKeyMaxSessions,
       "open sessions one uid may have; past it mkdir fails with EDQUOT; root is exempt", "none"},
      {Group::kUpfs, "metrics_file", "PATH", kKeyMetricsFile,
       "keep metrics in this file in Prometheus' text format, for node_exporter's textfile "
       "collector: written at mount, every metrics_interval and at unmount, each time whole "
       "(a temporary file renamed over it)",
       "none"},
      {Group::kUpfs, "metrics_interval", "SECONDS", kKeyMetricsInterval,
       "how often the metrics file is rewritten",
       std::to_string(defaults.metrics_interval_seconds)},
      {Group::kUpfs, "ignore", "PATTERN[:PATTERN...]", kKeyIgnore,
       "files tools leave behind (temporary copies, lock files): a commit leaves out and frees a "
       "file whose name (or, for a pattern with '/', its path in the session) matches one of "
       "these shell globs, unless the manifest lists it, and names it in the asset's xattr "
       "user.upfs.left_out and the log; .status shows them (ignored:). Replaces the default "
       "list; -o ignore= leaves nothing out. A comma in a pattern is written \\,",
       IgnoreListText(defaults.ignore_patterns)},

      {Group::kRados, "ceph_conf", "PATH", kKeyRados, "Ceph configuration file",
       "librados' search: $CEPH_CONF, /etc/ceph/ceph.conf, ..."},
      {Group::kRados, "ceph_id", "NAME", kKeyRados, "client name without 'client.'",
       defaults.rados.ceph_id},
      {Group::kRados, "rados_timeout", "SECONDS", kKeyRados,
       "a cluster operation that takes longer fails (EIO) instead of hanging",
       std::to_string(defaults.rados.timeout_seconds)},
      {Group::kRados, "lease", "SECONDS", kKeyRados,
       "this mount's lease on the store, at least 3, renewed every third of it; once it runs "
       "out another mount takes over its sessions",
       std::to_string(defaults.rados.lease_seconds)},

      // libfuse's options that `upfs --help` lists (libfuse 3.14), as they
      // apply to upfs.
      {Group::kFuse, "-h, --help", "", kKeyLibfuse, "print this help and exit", ""},
      {Group::kFuse, "-V, --version", "", kKeyLibfuse,
       "print the versions of upfs and libfuse and exit", ""},
      {Group::kFuse, "-f", "", kKeyLibfuse,
       "stay in the foreground instead of daemonizing once mounted; the log goes to stderr "
       "unless -o log_file is given",
       ""},
      {Group::kFuse, "-d, -o debug", "", kKeyLibfuse,
       "log every FUSE request (libfuse's debug output); implies -f and -o log_level=debug", ""},
      {Group::kFuse, "-s", "", kKeyLibfuse, "serve requests in one thread", ""},
      {Group::kFuse, "allow_other", "", kKeyLibfuse,
       "let other users use the mount (file modes still apply); a user other than root needs "
       "user_allow_other in /etc/fuse.conf",
       ""},
      {Group::kFuse, "allow_root", "", kKeyLibfuse,
       "let root use the mount besides the user who mounted it", ""},
      {Group::kFuse, "auto_unmount", "", kKeyLibfuse,
       "unmount when upfs exits, even when it is killed (fusermount3 stays behind to do it)", ""},
      {Group::kFuse, "clone_fd", "", kKeyLibfuse, "one /dev/fuse descriptor per worker thread", ""},
      {Group::kFuse, "max_idle_threads", "N", kKeyLibfuse, "idle worker threads kept at most",
       std::to_string(kDefaultIdleThreads)},
  };
  return kTable;
}

namespace {

// The parser's templates, from the table: "name=" for an option with a
// value (any value matches; the handler gets the whole "name=value" and
// parses it, so a bad value is reported by name), "name" for a switch.
class Templates {
 public:
  Templates() {
    for (const OptionDoc& option : OptionTable()) {
      if (option.key == kKeyLibfuse) continue;
      texts_.push_back(std::string(option.name) + (option.argument.empty() ? "" : "="));
      keys_.push_back(option.key);
    }
    for (size_t i = 0; i < texts_.size(); ++i) {
      options_.push_back(FUSE_OPT_KEY(texts_[i].c_str(), keys_[i]));
    }
    options_.push_back(FUSE_OPT_END);
  }
  const fuse_opt* options() const { return options_.data(); }

 private:
  std::vector<std::string> texts_;
  std::vector<int> keys_;
  std::vector<fuse_opt> options_;
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
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      case 'T':
      case 't':
        shift = 40;
        break;
      default:
        shift = -1;
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

bool IsRadosUrl(std::string_view store) {
  return store.substr(0, kRadosScheme.size()) == kRadosScheme;
}

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
    if (out->lease_seconds < 3)
      return Status::InvalidArgument("-o lease=" + std::string(value) + ": at least 3 seconds");
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
      return ParseSeconds("sweep_interval", ValueOf(arg), kMaxSeconds, &out.sweep_interval_seconds);
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
    case kKeyWorm:
      out.worm = true;
      return Status::OK();
    case kKeyQuota:
      return ParseBytes("quota", ValueOf(arg), &out.quota_bytes);
    case kKeyMetricsFile:
      if (ValueOf(arg).empty()) return Status::InvalidArgument("-o metrics_file= needs a path");
      out.metrics_file = std::string(ValueOf(arg));
      return Status::OK();
    case kKeyMetricsInterval:
      return ParseSeconds("metrics_interval", ValueOf(arg), 24 * 3600,
                          &out.metrics_interval_seconds);
    case kKeyIgnore:
      return session::IgnoreRules::ParseList(ValueOf(arg), &out.ignore_patterns);
    case kKeyMaxSessions: {
      const std::string_view value = ValueOf(arg);
      const char* end = value.data() + value.size();
      auto [ptr, ec] = std::from_chars(value.data(), end, out.max_sessions);
      if (ec != std::errc() || ptr != end || value.empty()) {
        return Status::InvalidArgument("-o max_sessions=" + std::string(value) +
                                       ": expected a whole number");
      }
      return Status::OK();
    }
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
  static const Templates kTemplates;
  ParseState state{out, Status::OK()};
  if (fuse_opt_parse(args, &state, kTemplates.options(), HandleArgument) != 0) {
    if (!state.error.ok()) return state.error;
    return Status::InvalidArgument("cannot parse the command line");
  }
  if (!out->rados_option_given.empty() && !out->store_dir.empty() && !out->is_rados) {
    return Status::InvalidArgument("-o " + out->rados_option_given +
                                   " is for a rados:// store, not the directory " + out->store_dir);
  }
  return Status::OK();
}

std::string OptionSpelling(const OptionDoc& option) {
  if (option.name.substr(0, 1) == "-") return std::string(option.name);
  std::string spelled = "-o " + std::string(option.name);
  if (!option.argument.empty()) spelled += "=" + std::string(option.argument);
  return spelled;
}

namespace {

// --help's layout, as libfuse's part of it: options indented by 4, their
// text from column 27, lines at most 79 columns.
constexpr size_t kHelpIndent = 4;
constexpr size_t kHelpTextColumn = 27;
constexpr size_t kHelpWidth = 79;

// Prints `text` word-wrapped from column kHelpTextColumn, the cursor being
// at column `column` on the current line, and ends the line.
void PrintWrapped(std::FILE* out, std::string_view text, size_t column) {
  const std::string margin(kHelpTextColumn, ' ');
  std::fprintf(out, "%s", std::string(kHelpTextColumn - column, ' ').c_str());
  column = kHelpTextColumn;
  bool line_empty = true;
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (word.empty()) continue;
    if (!line_empty && column + 1 + word.size() > kHelpWidth) {
      std::fprintf(out, "\n%s", margin.c_str());
      column = kHelpTextColumn;
      line_empty = true;
    }
    std::fprintf(out, "%s%.*s", line_empty ? "" : " ", static_cast<int>(word.size()), word.data());
    column += word.size() + (line_empty ? 0 : 1);
    line_empty = false;
  }
  std::fprintf(out, "\n");
}

void PrintOptionGroup(std::FILE* out, OptionDoc::Group group, const char* heading) {
  std::fprintf(out, "%s\n", heading);
  for (const OptionDoc& option : OptionTable()) {
    if (option.group != group) continue;
    const std::string spelled = OptionSpelling(option);
    std::fprintf(out, "%s%s", std::string(kHelpIndent, ' ').c_str(), spelled.c_str());
    size_t column = kHelpIndent + spelled.size();
    // At least two spaces between an option and its text.
    if (column + 2 > kHelpTextColumn) {
      std::fprintf(out, "\n");
      column = 0;
    }
    std::string text(option.description);
    if (!option.default_value.empty()) text += " (default: " + option.default_value + ")";
    PrintWrapped(out, text, column);
  }
  std::fprintf(out, "\n");
}

}  // namespace

void PrintUsage(std::FILE* out, const char* program) {
  std::fprintf(out,
               "usage: %s [options] STORE_DIR MOUNTPOINT\n"
               "       %s [options] rados://POOL[/NAMESPACE] MOUNTPOINT\n"
               "\n"
               "Mounts the upfs store in STORE_DIR (created if missing), or in a RADOS\n"
               "pool (and namespace; created in it if missing), at MOUNTPOINT:\n"
               "sessions/ takes uploads, assets/ holds what was committed. Daemonizes once\n"
               "mounted unless -f (or -d) is given. Unmount with fusermount3 -u MOUNTPOINT.\n"
               "See upfs(8).\n"
               "\n",
               program, program);
  PrintOptionGroup(out, OptionDoc::Group::kUpfs, "upfs options:");
  PrintOptionGroup(out, OptionDoc::Group::kRados, "rados:// store options:");
  std::fprintf(out,
               "upfs always adds -o default_permissions (the kernel enforces file modes)\n"
               "and -o fsname=upfs:STORE_DIR,subtype=upfs.\n"
               "\n");
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
