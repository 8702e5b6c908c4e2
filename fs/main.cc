// upfs: mounts a upfs store.
//
//   upfs [options] STORE_DIR MOUNTPOINT      (see `upfs --help`)
//   upfs [options] rados://POOL[/NAMESPACE] MOUNTPOINT
//
// Start-up order, and why:
//   1. Parse the command line; --help and --version exit here.
//   2. Unless -f: fork now, before anything starts a thread. The parent
//      waits on a pipe and exits 0 only when the child reports the mount
//      is up, or 1 when the child failed (having printed why on the
//      terminal's stderr, which it still shares). libfuse's
//      fuse_daemonize() forks after the store is open, and a fork copies
//      only the forking thread: LevelDB's compaction thread, started while
//      opening, would be gone from the daemon, and writes would stall
//      forever once level 0 filled up. Its parent also exits 0 before the
//      mount is known to work.
//   3. Logging, then the store and the engine: a store in use by another
//      daemon or of another format fails here, with exit status 1.
//   4. fuse_session_new, signal handlers, mount. Then (daemon) detach from
//      the terminal and report readiness to the parent.
//   5. The multi-threaded loop, with the expiry sweeper beside it, until
//      unmount or SIGINT/SIGTERM/SIGHUP; then everything in reverse.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include "base/free_memory.h"
#include "base/mutex.h"
#include "fs/command_line.h"
#include "fs/expiry_sweeper.h"
#include "fs/fsck_command.h"
#include "fs/fuse_api.h"
#include "fs/metrics.h"
#include "fs/metrics_file.h"
#include "fs/upfs_fs.h"
#include "session/engine.h"
#include "store/leveldb_kv.h"
#include "store/rados_backend.h"

namespace upfs::fs {
namespace {

// The project's version (CMakeLists.txt), as upfs(8) states it.
constexpr const char* kVersion = UPFS_VERSION;
constexpr const char* kLogFileName = "upfs.log";
constexpr const char* kLogPattern = "[%Y-%m-%d %H:%M:%S.%e] [%l] [%t] %v";

// Owns what libfuse allocates for us.
struct FuseArgsOwner {
  fuse_args* args;
  ~FuseArgsOwner() { fuse_opt_free_args(args); }
};
struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
struct LoopConfigDeleter {
  void operator()(fuse_loop_config* config) const { fuse_loop_cfg_destroy(config); }
};

// libfuse's messages (option errors, mount failures, and with -d its
// request trace) go to upfs's log, so a daemon keeps them too.
void ForwardFuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  try {
    char line[2048];
    const int n = std::vsnprintf(line, sizeof line, fmt, ap);
    if (n < 0) return;
    size_t len = std::strlen(line);
    while (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    if (len == 0) return;
    spdlog::level::level_enum to = spdlog::level::debug;
    if (level <= FUSE_LOG_ERR) {
      to = spdlog::level::err;
    } else if (level == FUSE_LOG_WARNING) {
      to = spdlog::level::warn;
    } else if (level <= FUSE_LOG_INFO) {
      to = spdlog::level::info;
    }
    spdlog::log(to, "libfuse: {}", line);
  } catch (...) {
    // Called from C; a lost log line is the lesser harm.
  }
}

// The log. One logger whose sinks change as start-up proceeds (a dist sink
// makes that thread-safe): the terminal first, so start-up errors are seen;
// the log file once there is one; the terminal is dropped when a daemon
// detaches from it.
class Log {
 public:
  Log(spdlog::level::level_enum level, bool terminal_gets_everything)
      : sinks_(std::make_shared<spdlog::sinks::dist_sink_mt>()),
        terminal_(std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>()) {
    // With a log file (or as a daemon), the terminal only gets trouble.
    if (!terminal_gets_everything) terminal_->set_level(spdlog::level::warn);
    sinks_->add_sink(terminal_);
    auto logger = std::make_shared<spdlog::logger>("upfs", sinks_);
    logger->set_pattern(kLogPattern);
    logger->set_level(level);
    // Lifecycle lines reach the file at once; debug lines are flushed in
    // batches (and every second, below) so they stay cheap.
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    spdlog::flush_every(std::chrono::seconds(1));
  }

  // Adds the log file `path` (appending). Throws spdlog::spdlog_ex.
  void AddFile(const std::string& path) {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
    file->set_pattern(kLogPattern);
    sinks_->add_sink(file);
    MutexLock lock(file_mu_);
    file_ = std::move(file);
    file_path_ = path;
  }

  // After logrotate moved the log file away: opens its path again (a new
  // file) and writes there from now on. SIGUSR1 (LogReopener).
  void ReopenFile() {
    MutexLock lock(file_mu_);
    if (!file_) {
      spdlog::info("SIGUSR1: there is no log file to reopen (no -o log_file)");
      return;
    }
    std::shared_ptr<spdlog::sinks::basic_file_sink_mt> reopened;
    try {
      reopened =
          std::make_shared<spdlog::sinks::basic_file_sink_mt>(file_path_, /*truncate=*/false);
    } catch (const std::exception& e) {
      spdlog::error("SIGUSR1: cannot reopen the log file {} (still writing to the old one): {}",
                    file_path_, e.what());
      return;
    }
    reopened->set_pattern(kLogPattern);
    sinks_->add_sink(reopened);
    sinks_->remove_sink(file_);
    file_ = std::move(reopened);
    spdlog::info("SIGUSR1: log file {} reopened", file_path_);
  }

  // Adds syslog (the journal, under systemd), for a daemon whose store
  // has no directory to hold a log file.
  void AddSyslog() {
    auto syslog = std::make_shared<spdlog::sinks::syslog_sink_mt>("upfs", LOG_PID, LOG_DAEMON,
                                                                  /*enable_formatting=*/true);
    // syslog stamps each line itself.
    syslog->set_pattern("[%l] [%t] %v");
    sinks_->add_sink(syslog);
  }

  void DropTerminal() { sinks_->remove_sink(terminal_); }

 private:
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sinks_;
  std::shared_ptr<spdlog::sinks::ansicolor_stderr_sink_mt> terminal_;
  Mutex file_mu_;
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file_ GUARDED_BY(file_mu_);
  std::string file_path_ GUARDED_BY(file_mu_);
};

// SIGUSR1 reopens the log file, for logrotate without copytruncate
// (SIGHUP, like SIGINT and SIGTERM, unmounts: libfuse's handlers). The
// signal is blocked in every thread (RunMount blocks it before the first
// thread starts) and taken here with sigwait, so the reopen runs in an
// ordinary thread, not in a signal handler.
class LogReopener {
 public:
  explicit LogReopener(Log* log) : log_(log), thread_([this] { Run(); }) {}
  ~LogReopener() {
    stopping_ = true;
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  void Run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (stopping_) return;
      log_->ReopenFile();
    }
  }

  Log* const log_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;  // last: started once everything above exists
};

// The daemon side of the start-up handshake (see the top of this file).
class Daemonizer {
 public:
  // Forks. Returns in the child (the daemon to be) with true; in the parent
  // it never returns: it exits with the child's verdict. False when the
  // fork itself failed.
  bool Fork() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      std::perror("upfs: pipe");
      return false;
    }
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("upfs: fork");
      return false;
    }
    if (pid > 0) {
      close(fds[1]);
      char verdict = 1;
      ssize_t n;
      do {
        n = read(fds[0], &verdict, 1);
      } while (n < 0 && errno == EINTR);
      if (n == 1 && verdict == 0) _exit(0);
      // The child failed: it printed why. Reap it and report a crash.
      int status = 0;
      if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status)) {
        std::fprintf(stderr, "upfs: the daemon was killed by signal %d while starting\n",
                     WTERMSIG(status));
      }
      _exit(1);
    }
    close(fds[0]);
    ready_fd_ = fds[1];
    return true;
  }

  // Detaches from the terminal and releases the parent with status 0.
  void Ready() {
    if (ready_fd_ < 0) return;
    if (setsid() < 0) spdlog::warn("setsid: {}", std::strerror(errno));
    const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDERR_FILENO);
      if (null_fd > STDERR_FILENO) close(null_fd);
    }
    const char verdict = 0;
    if (write(ready_fd_, &verdict, 1) != 1) {
      // The parent is gone (killed?); nobody is left to tell.
    }
    close(ready_fd_);
    ready_fd_ = -1;
  }

 private:
  int ready_fd_ = -1;
};

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return path;
  std::string normal = absolute.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

struct Mount {
  CommandLine cl;
  std::string store_dir;  // absolute, or the rados:// URL as given
  fuse_cmdline_opts opts{};
};

// The store the command line names, opened (created if missing).
Result<std::unique_ptr<store::Store>> OpenStore(const Mount& m) {
  if (m.cl.is_rados) {
    store::RadosStoreOptions options;
    options.connect.ceph_conf = m.cl.rados.ceph_conf;
    options.connect.ceph_id = m.cl.rados.ceph_id;
    options.connect.timeout = std::chrono::seconds(m.cl.rados.timeout_seconds);
    options.lease = std::chrono::seconds(m.cl.rados.lease_seconds);
    return store::OpenRadosBackend(m.cl.rados.pool, m.cl.rados.ns, options);
  }
  store::LevelDbOptions options;
  options.reserve_bytes = m.cl.reserve_bytes;
  return store::OpenLevelDbStore(m.store_dir, options);
}

int RunMount(Mount& m, fuse_args* args) {
  const bool daemon = !m.opts.foreground;
  Daemonizer daemonizer;
  if (daemon && !daemonizer.Fork()) return 1;
  // Before any thread starts, so that every thread inherits it: SIGUSR1
  // is taken by LogReopener's sigwait only.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);

  spdlog::level::level_enum level = m.cl.log_level;
  if (m.opts.debug && !m.cl.log_level_given) level = spdlog::level::debug;
  const std::string log_file = m.cl.log_file.empty() ? "" : AbsolutePath(m.cl.log_file);
  std::unique_ptr<Log> log;
  try {
    log = std::make_unique<Log>(level, /*terminal_gets_everything=*/!daemon && log_file.empty());
    if (!log_file.empty()) log->AddFile(log_file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "upfs: cannot set up logging: %s\n", e.what());
    return 1;
  }
  fuse_set_log_func(ForwardFuseLog);
  spdlog::info("upfs {} (libfuse {}) starting: store {}, mount point {}", kVersion,
               fuse_pkgversion(), m.store_dir, m.opts.mountpoint);

  // The store and engine, before anything is mounted: their errors are
  // the most likely ones, and must reach the terminal with status 1.
  Result<std::unique_ptr<store::Store>> store = OpenStore(m);
  if (!store.ok()) {
    spdlog::error("cannot open store {}: {}", m.store_dir, store.status().ToString());
    return 1;
  }
  if (daemon && log_file.empty() && m.cl.is_rados) {
    log->AddSyslog();
  } else if (daemon && log_file.empty()) {
    // Only now: the store exists, and upfs never writes into a directory
    // that turned out not to be a store.
    const std::string path = m.store_dir + "/" + kLogFileName;
    try {
      log->AddFile(path);
    } catch (const std::exception& e) {
      spdlog::error("cannot open log file {}: {}", path, e.what());
      return 1;
    }
  }
  session::Options engine_options;
  engine_options.ttl_ns = m.cl.ttl_seconds * 1'000'000'000;
  engine_options.write_once_default = m.cl.write_once;
  engine_options.pre_commit = m.cl.pre_commit;
  engine_options.post_commit = m.cl.post_commit;
  engine_options.hook_timeout_ns = m.cl.hook_timeout_seconds * 1'000'000'000;
  engine_options.mountpoint = m.opts.mountpoint;
  engine_options.worm = m.cl.worm;
  engine_options.quota_bytes = m.cl.quota_bytes;
  engine_options.max_sessions = m.cl.max_sessions;
  engine_options.ignore_patterns = m.cl.ignore_patterns;
  Result<std::unique_ptr<session::Engine>> engine =
      session::Engine::Open(std::move(*store), engine_options);
  if (!engine.ok()) {
    spdlog::error("cannot open store {}: {}", m.store_dir, engine.status().ToString());
    return 1;
  }

  // Opening the store replayed LevelDB's log into a memtable, wrote it out
  // and freed it, on this thread; glibc kept what a thread frees in that
  // thread's arena, and this one is not used again. Measured in a soak
  // after a restart: 27 MB held, 0.25 MB of it in use. Give it back.
  ReturnFreeMemory();

  FsOptions fs_options;
  // A RADOS store has no local file system to report: statfs then asks
  // the store for its space (Store::GetSpace).
  if (!m.cl.is_rados) fs_options.store_dir = m.store_dir;
  fs_options.mountpoint = m.opts.mountpoint;
  UpfsFs fs(engine->get(), fs_options);
  // -o metrics_file: written once the mount is up (so it exists as soon
  // as the mount does), then by its own thread, and last at unmount.
  std::unique_ptr<MetricsFile> metrics;
  if (!m.cl.metrics_file.empty()) {
    metrics = std::make_unique<MetricsFile>(AbsolutePath(m.cl.metrics_file), [&engine, &fs] {
      MetricsSnapshot snapshot;
      snapshot.engine = (*engine)->GetStats();
      snapshot.requests = fs.requests().Take();
      if (Result<store::Space> space = fs.StoreSpace(); space.ok()) snapshot.space = *space;
      return RenderMetrics(snapshot);
    });
  }

  std::unique_ptr<fuse_session, SessionDeleter> se(
      fuse_session_new(args, &UpfsFs::Operations(), sizeof(fuse_lowlevel_ops), &fs));
  if (!se) {
    spdlog::error("cannot create the FUSE session (see the libfuse message above)");
    return 1;
  }
  if (fuse_set_signal_handlers(se.get()) != 0) {
    spdlog::error("cannot install signal handlers");
    return 1;
  }
  if (fuse_session_mount(se.get(), m.opts.mountpoint) != 0) {
    spdlog::error("cannot mount at {} (see the libfuse message above)", m.opts.mountpoint);
    fuse_remove_signal_handlers(se.get());
    return 1;
  }
  const unsigned max_threads = m.cl.max_threads_given ? m.opts.max_threads : kDefaultMaxThreads;
  spdlog::info("mounted {} at {}: ttl {} s, new sessions {}, {}", m.store_dir, m.opts.mountpoint,
               m.cl.ttl_seconds, m.cl.write_once ? "write-once" : "last-write-wins",
               m.opts.singlethread ? std::string("single-threaded")
                                   : std::to_string(max_threads) + " threads");
  spdlog::info("a commit leaves out files not in its manifest that match: {}",
               m.cl.ignore_patterns.empty() ? std::string("(nothing: -o ignore=)")
                                            : session::IgnoreRules::JoinList(m.cl.ignore_patterns));

  if (metrics) metrics->Update();
  if (daemon) {
    log->DropTerminal();
    daemonizer.Ready();
  }
  if (Status st = (*engine)->StartPostCommit(); !st.ok()) {
    // The notices stay in the store for the next start; uploads go on.
    spdlog::error("{}", st.ToString());
  }
  // As fuse_daemonize() does: the daemon must not keep a directory busy.
  if (chdir("/") != 0) spdlog::warn("chdir /: {}", std::strerror(errno));

  fs.Start(se.get());
  LogReopener reopener(log.get());
  ExpirySweeper sweeper(std::chrono::seconds(m.cl.sweep_interval_seconds),
                        [&fs] { fs.SweepExpiredSessions(); });
  sweeper.Start();
  // The sweeper's timing serves the metrics file as well: a thread that
  // runs a task every interval and stops at once.
  std::optional<ExpirySweeper> metrics_writer;
  if (metrics) {
    metrics_writer.emplace(
        std::chrono::seconds(m.cl.metrics_interval_seconds), [&metrics] { metrics->Update(); },
        "metrics file update");
    metrics_writer->Start();
  }

  int loop_result = 0;
  if (m.opts.singlethread) {
    loop_result = fuse_session_loop(se.get());
  } else {
    std::unique_ptr<fuse_loop_config, LoopConfigDeleter> config(fuse_loop_cfg_create());
    fuse_loop_cfg_set_clone_fd(config.get(), static_cast<unsigned>(m.opts.clone_fd));
    fuse_loop_cfg_set_max_threads(config.get(), max_threads);
    // UINT_MAX is fuse_parse_cmdline's "not given".
    fuse_loop_cfg_set_idle_threads(config.get(), m.opts.max_idle_threads == UINT_MAX
                                                     ? kDefaultIdleThreads
                                                     : m.opts.max_idle_threads);
    loop_result = fuse_session_loop_mt(se.get(), config.get());
  }

  // The invalidation thread writes to the session's /dev/fuse descriptor,
  // which fuse_session_unmount() closes: it stops first, or a notification
  // could go to a closed descriptor, or to a file that reused its number
  // (ThreadSanitizer saw the close race with its writev).
  sweeper.Stop();
  if (metrics_writer) metrics_writer->Stop();
  fs.Stop();
  fuse_session_unmount(se.get());
  fuse_remove_signal_handlers(se.get());
  se.reset();
  if (loop_result < 0) {
    spdlog::error("unmounted {} after a session loop error: {}", m.opts.mountpoint,
                  std::strerror(-loop_result));
  } else if (loop_result > 0) {
    spdlog::info("unmounted {} on signal {}", m.opts.mountpoint, loop_result);
  } else {
    spdlog::info("unmounted {}", m.opts.mountpoint);
  }
  if (fs.inodes().LiveCount() != 0) {
    spdlog::debug("{} inodes were still referenced by the kernel at unmount",
                  fs.inodes().LiveCount());
  }
  // The last metrics: every request answered, every commit counted.
  if (metrics) metrics->Update();
  engine->reset();  // closes the store
  spdlog::default_logger()->flush();
  return loop_result < 0 ? 1 : 0;
}

int Main(int argc, char** argv) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  FuseArgsOwner args_owner{&args};

  Mount m;
  Status parsed = ParseCommandLine(&args, &m.cl);
  if (!parsed.ok()) {
    std::fprintf(stderr, "upfs: %s\nTry 'upfs --help'.\n", parsed.message().c_str());
    return kUsageExit;
  }
  if (!m.cl.store_dir.empty()) {
    m.store_dir = m.cl.is_rados ? m.cl.store_dir : AbsolutePath(m.cl.store_dir);
    // Inserted before the user's options, so an explicit -o fsname=... (or
    // subtype=) on the command line still wins.
    const std::string names = "-ofsname=upfs:" + EscapeOptionValue(m.store_dir) + ",subtype=upfs";
    if (fuse_opt_insert_arg(&args, 1, names.c_str()) != 0 ||
        fuse_opt_insert_arg(&args, 1, "-odefault_permissions") != 0) {
      std::fprintf(stderr, "upfs: out of memory\n");
      return 1;
    }
  }
  if (fuse_parse_cmdline(&args, &m.opts) != 0) {
    std::fprintf(stderr, "Try 'upfs --help'.\n");
    return kUsageExit;
  }
  std::unique_ptr<char, FreeDeleter> mountpoint(m.opts.mountpoint);

  if (m.opts.show_help) {
    PrintUsage(stdout, "upfs");
    std::printf("FUSE options:\n");
    std::fflush(stdout);
    fuse_cmdline_help();
    fuse_lowlevel_help();
    return 0;
  }
  if (m.opts.show_version) {
    std::printf("upfs %s\nlibfuse %s\n", kVersion, fuse_pkgversion());
    std::fflush(stdout);
    fuse_lowlevel_version();
    return 0;
  }
  if (m.store_dir.empty() || m.opts.mountpoint == nullptr) {
    std::fprintf(stderr,
                 "upfs: %s\nusage: upfs [options] STORE_DIR|rados://POOL[/NAMESPACE] "
                 "MOUNTPOINT\nTry 'upfs --help'.\n",
                 m.store_dir.empty() ? "missing STORE_DIR and MOUNTPOINT" : "missing MOUNTPOINT");
    return kUsageExit;
  }
  return RunMount(m, &args);
}

}  // namespace
}  // namespace upfs::fs

int main(int argc, char** argv) {
  // Two malloc arenas, not glibc's 8 per core. An arena keeps the pages
  // of what was freed into it, for its own threads: a memtable's
  // small-file values are allocated by the FUSE worker whose write led
  // LevelDB's write group and freed by the compaction thread into that
  // worker's arena, so with up to 16 arenas for 16 workers the daemon's
  // RSS crept up as more arenas reached their peaks. 4-minute
  // soaks (tests/bench/soak.sh): 80.5 -> 83.7 MiB with the default, 69.2
  // -> 74.8 MiB and flat for the last two minutes with two
  // (docs/performance.md, "Soak"). MALLOC_ARENA_MAX in the environment still decides.
  // Only where the program runs on glibc's malloc (UPFS_MALLOC=glibc, the
  // sanitizer builds): tcmalloc's mallopt does nothing.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  int status = 1;
  try {
    // `upfs fsck STORE_DIR` checks a store offline; everything else mounts.
    status = (argc > 1 && std::strcmp(argv[1], "fsck") == 0) ? upfs::fs::RunFsck(argc, argv)
                                                             : upfs::fs::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "upfs: fatal: %s\n", e.what());
  }
  // Flushes the log and stops its flusher thread; nothing logs after this.
  spdlog::shutdown();
  return status;
}
