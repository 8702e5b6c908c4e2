#include "session/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "session/engine_impl.h"

namespace upfs::session {
namespace {

constexpr size_t kMaxFirstLine = 512;
constexpr size_t kMaxLoggedLine = 4096;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Seconds(int64_t ns) {
  if (ns < 1'000'000'000) return std::to_string(ns / 1'000'000) + " ms";
  const int64_t s = ns / 1'000'000'000;
  const int64_t tenths = ns / 100'000'000 % 10;
  return tenths == 0 ? std::to_string(s) + " s"
                     : std::to_string(s) + "." + std::to_string(tenths) + " s";
}

// One of the program's output streams, split into lines for the log.
struct Stream {
  int fd = -1;
  const char* name = "";
  std::string partial;
  bool first_line_done = false;
  std::string first_line;  // kept for stderr

  void Line(std::string_view line, std::string_view tag) {
    if (line.size() > kMaxLoggedLine) line = line.substr(0, kMaxLoggedLine);
    spdlog::info("{} {}: {}", tag, name, line);
    if (!first_line_done) {
      first_line = std::string(line.substr(0, kMaxFirstLine));
      first_line_done = true;
    }
  }
  // Reads what is there now; false at end of file (or an error).
  bool Drain(std::string_view tag) {
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      if (n <= 0) {
        if (!partial.empty()) Line(partial, tag);
        partial.clear();
        return false;
      }
      partial.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        Line(std::string_view(partial).substr(start, nl - start), tag);
      }
      partial.erase(0, start);
      // A line longer than anything we log: keep its start only.
      if (partial.size() > kMaxLoggedLine) {
        Line(partial, tag);
        partial.clear();
      }
    }
  }
};

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

std::string HookRun::Describe(int64_t timeout_ns) const {
  std::string text;
  if (!spawn_error.empty()) return "could not be started: " + spawn_error;
  if (timed_out) {
    text = "was killed after " + Seconds(timeout_ns) + " (hook_timeout)";
  } else if (cancelled) {
    text = "was killed: the daemon is stopping";
  } else if (exit_code >= 0) {
    text = "exited with status " + std::to_string(exit_code);
  } else {
    text = "was killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
  if (!first_stderr_line.empty()) text += ": " + first_stderr_line;
  return text;
}

HookRun RunHook(const std::string& program, const HookEnv& env, int64_t timeout_ns,
                std::string_view tag, const std::atomic<bool>* cancel) {
  HookRun run;
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    run.spawn_error = std::string("pipe: ") + std::strerror(errno);
    for (int* fd : {&out[0], &out[1], &err[0], &err[1]}) CloseFd(*fd);
    return run;
  }
  std::vector<std::string> env_text;
  env_text.reserve(env.size() + 1);
  env_text.push_back("PATH=" + std::string(kHookPath));
  for (const auto& [name, value] : env) env_text.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string argv0 = program;
  char* argv[] = {argv0.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  // Nothing of the daemon's (the store's files, /dev/fuse) reaches it.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawn_file_actions_addchdir_np(&actions, "/");
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  // The daemon blocks SIGUSR1 (log reopening) and may ignore SIGPIPE.
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD})
    sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  CloseFd(out[1]);
  CloseFd(err[1]);
  if (spawned != 0) {
    run.spawn_error = program + ": " + std::strerror(spawned);
    CloseFd(out[0]);
    CloseFd(err[0]);
    spdlog::warn("{}: {} could not be started: {}", tag, program, std::strerror(spawned));
    return run;
  }
  spdlog::info("{}: {} started (pid {})", tag, program, pid);

  Stream streams[2];
  streams[0].fd = out[0];
  streams[0].name = "stdout";
  streams[1].fd = err[0];
  streams[1].name = "stderr";
  for (Stream& s : streams) fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
  const int64_t deadline = SteadyNs() + timeout_ns;
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    pollfd fds[2];
    nfds_t n = 0;
    for (Stream& s : streams) {
      if (s.fd >= 0) fds[n++] = {s.fd, POLLIN, 0};
    }
    // Short polls: the exit (a program whose children keep its pipes
    // open never gives end of file), the deadline and cancel are checked
    // between them.
    const int64_t left = deadline - SteadyNs();
    const int wait_ms = static_cast<int>(std::clamp<int64_t>(left / 1'000'000, 0, 50));
    if (n > 0) {
      poll(fds, n, wait_ms);
    } else {
      // Both pipes closed: it is exiting (or its output went elsewhere).
      usleep(static_cast<useconds_t>(std::min(wait_ms, 2)) * 1000);
    }
    for (Stream& s : streams) {
      if (s.fd >= 0 && !s.Drain(tag)) CloseFd(s.fd);
    }
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      reaped = true;
      break;
    }
    const bool cancelled = cancel != nullptr && cancel->load();
    if (SteadyNs() >= deadline || cancelled) {
      run.timed_out = !cancelled;
      run.cancelled = cancelled;
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      reaped = true;
    }
  }
  // What it wrote before it ended is in the pipes still.
  for (Stream& s : streams) {
    if (s.fd >= 0) s.Drain(tag);
    if (!s.partial.empty()) s.Line(s.partial, tag);
    CloseFd(s.fd);
  }
  run.first_stderr_line = streams[1].first_line;
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  return run;
}

std::string ManifestLineOf(std::string_view sha256, std::string_view path) {
  std::string line;
  const bool escape = path.find_first_of("\\\n\r") != std::string_view::npos;
  if (escape) line.push_back('\\');
  line.append(sha256);
  line.append("  ");
  for (char c : path) {
    if (escape && c == '\\') {
      line.append("\\\\");
    } else if (escape && c == '\n') {
      line.append("\\n");
    } else if (escape && c == '\r') {
      line.append("\\r");
    } else {
      line.push_back(c);
    }
  }
  line.push_back('\n');
  return line;
}

// ---- CommitNotifier ----

CommitNotifier::CommitNotifier(store::Store* store, PostCommitSettings settings)
    : store_(store), settings_(std::move(settings)) {}

CommitNotifier::~CommitNotifier() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cancel_ = true;
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

Status CommitNotifier::Start() {
  std::vector<std::string> assets;
  UPFS_RETURN_IF_ERROR(store_->ClaimNotices(&assets));
  if (!assets.empty()) {
    spdlog::info("post_commit: {} commit(s) not yet delivered, delivering them now", assets.size());
  }
  Queue(std::move(assets));
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

Status CommitNotifier::TakeOver() {
  // TakeOverNotices, not ClaimNotices: a scan that listed a notice this
  // thread's Loop then delivered and removed would queue it again
  // (multi.failover saw n1 run twice). On a store one process serves it
  // lists nothing.
  std::vector<std::string> assets;
  UPFS_RETURN_IF_ERROR(store_->TakeOverNotices(&assets));
  Queue(std::move(assets));
  return Status::OK();
}

void CommitNotifier::Queue(std::vector<std::string> assets) {
  {
    MutexLock lock(mu_);
    for (std::string& a : assets) {
      if (known_.insert(a).second) queue_.push_back({std::move(a), 0, 0});
    }
  }
  wake_.SignalAll();
}

void CommitNotifier::Enqueue(std::string asset) { Queue({std::move(asset)}); }

void CommitNotifier::Loop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    if (queue_.empty()) {
      wake_.Wait(mu_);
      continue;
    }
    // The first due, in commit order among those due.
    auto next =
        std::min_element(queue_.begin(), queue_.end(),
                         [](const Pending& a, const Pending& b) { return a.due_ns < b.due_ns; });
    const int64_t now = SteadyNs();
    if (next->due_ns > now) {
      wake_.WaitFor(mu_, std::chrono::nanoseconds(next->due_ns - now));
      continue;
    }
    Pending p = std::move(*next);
    queue_.erase(next);
    lock.Unlock();
    const bool done = Deliver(p);
    lock.Lock();
    if (done) known_.erase(p.asset);
    if (!done && !stopping_) {
      ++p.attempts;
      int64_t delay = settings_.retry_initial_ns;
      for (int i = 1; i < p.attempts && delay < settings_.retry_max_ns; ++i) delay *= 2;
      delay = std::min(delay, settings_.retry_max_ns);
      p.due_ns = SteadyNs() + delay;
      spdlog::warn("post_commit of asset {}: attempt {} failed; next in {}", Quote(p.asset),
                   p.attempts, Seconds(delay));
      queue_.push_back(std::move(p));
    }
  }
}

bool CommitNotifier::Deliver(const Pending& p) {
  const std::string tag = "post_commit of asset " + Quote(p.asset);
  store::AssetRecord asset;
  Status got = store_->GetAsset(p.asset, &asset);
  if (got.IsNotFound()) {
    // Nothing to announce any more: the notice goes.
    spdlog::warn("{}: the asset is gone; its notice is dropped", tag);
  } else if (!got.ok()) {
    spdlog::warn("{}: reading the asset failed: {}", tag, got.ToString());
    ++failures_;
    return false;
  } else {
    HookEnv env = {
        {"UPFS_HOOK", "post_commit"},
        {"UPFS_ASSET", asset.name},
        {"UPFS_UID", std::to_string(asset.uid)},
        {"UPFS_GID", std::to_string(asset.gid)},
        {"UPFS_FILES", std::to_string(asset.files)},
        {"UPFS_BYTES", std::to_string(asset.bytes)},
        {"UPFS_COMMITTED_NS", std::to_string(asset.committed_ns)},
        {"UPFS_ATTEMPT", std::to_string(p.attempts + 1)},
    };
    if (!settings_.mountpoint.empty()) {
      env.emplace_back("UPFS_MOUNTPOINT", settings_.mountpoint);
      env.emplace_back("UPFS_ASSET_DIR", settings_.mountpoint + "/assets/" + asset.name);
    }
    HookRun run = RunHook(settings_.program, env, settings_.timeout_ns, tag, &cancel_);
    if (!run.Succeeded()) {
      if (!run.cancelled) ++failures_;
      spdlog::warn("{}: {} {}", tag, settings_.program, run.Describe(settings_.timeout_ns));
      return false;
    }
  }
  store::Batch batch;
  batch.RemoveNotice(p.asset);
  if (Status st = store_->Apply(batch, /*sync=*/false); !st.ok()) {
    // Delivered, but recorded as not: it will be delivered again.
    spdlog::warn("{}: removing its notice failed: {}", tag, st.ToString());
    ++failures_;
    return false;
  }
  ++delivered_;
  spdlog::info("{}: delivered", tag);
  return true;
}

}  // namespace upfs::session
