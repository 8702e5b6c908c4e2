// Commit hooks: the programs an operator sets to run around a commit.
//
//   -o pre_commit=PROGRAM   runs during a finish, once every file is
//                           verified and before the index write; any exit
//                           but 0 refuses the commit (Engine: NotPermitted)
//   -o post_commit=PROGRAM  runs after a commit is durable, never delaying
//                           it; delivered at least once, across crashes
//                           (CommitNotifier)
//
// A program runs without a shell: its path is exec'd with argv[0] only and
// the session's facts in a fixed environment (docs/configuration.md, "Commit hooks"), so
// no name is ever split or interpreted. stdin is /dev/null, the working
// directory "/", every other descriptor of the daemon closed, signals at
// their defaults, in a process group of its own (a timeout kills the whole
// group). Each line it prints on stdout or stderr goes to the log.
//
// Thread safety: RunHook may be called from any number of threads at once.
// CommitNotifier's methods likewise.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "store/store.h"

namespace upfs::session {

// The environment a hook gets, beyond PATH (kHookPath).
using HookEnv = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kHookPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct HookRun {
  // Why the program could not be started; empty when it was.
  std::string spawn_error;
  // Killed: it ran past its time limit.
  bool timed_out = false;
  // Killed: the daemon is stopping (CommitNotifier).
  bool cancelled = false;
  // Its exit status; -1 when it ended by a signal (then `signal` says which).
  int exit_code = -1;
  int signal = 0;
  // The first line it wrote on stderr (at most 512 bytes), or "".
  std::string first_stderr_line;

  bool Succeeded() const {
    return spawn_error.empty() && !timed_out && !cancelled && exit_code == 0;
  }
  // "exited with status 3: <first line>", "killed after 5 s (hook_timeout)", ...
  std::string Describe(int64_t timeout_ns) const;
};

// Runs `program` (an absolute path) with `env`, as described above, and
// waits for it, at most `timeout_ns`, or until *cancel turns true (may be
// null). `tag` names the run in the log ("pre_commit of session 'x'").
HookRun RunHook(const std::string& program, const HookEnv& env, int64_t timeout_ns,
                std::string_view tag, const std::atomic<bool>* cancel = nullptr);

// The sha256sum line of one file ("<hash>  <path>\n"), with coreutils'
// escaping for paths holding '\\', '\n' or '\r' (as ParseManifest reads).
std::string ManifestLineOf(std::string_view sha256, std::string_view path);

struct PostCommitSettings {
  std::string program;     // absolute path
  std::string mountpoint;  // for UPFS_ASSET_DIR; "" leaves it out
  int64_t timeout_ns = int64_t{60} * 1'000'000'000;
  // Failures are retried after this, doubling up to retry_max_ns.
  int64_t retry_initial_ns = int64_t{1'000'000'000};
  int64_t retry_max_ns = int64_t{300} * 1'000'000'000;
};

// Delivers commit notices: runs the post_commit program once for each
// asset whose notice (Batch::AddNotice, written with the commit) is in
// the store, and removes the notice once the program exits 0. A failure
// is logged and retried with backoff. Notices left by a crash are found
// by Start (the store's ClaimNotices), so every commit is delivered at
// least once; one interrupted between the program's success and the
// notice's removal is delivered again. On a store several mounts share,
// each mount delivers its own commits' notices, and those of mounts that
// died are taken over by one live mount (at its start, or TakeOver from
// its sweep).
class CommitNotifier {
 public:
  CommitNotifier(store::Store* store, PostCommitSettings settings);
  // Stops the thread: a program still running is killed, and its notice
  // stays for the next start.
  ~CommitNotifier();
  CommitNotifier(const CommitNotifier&) = delete;
  CommitNotifier& operator=(const CommitNotifier&) = delete;

  // Queues every notice this mount is to deliver and starts delivering.
  Status Start();
  // Queues the notices of mounts that are gone, taken over (several
  // mounts); a no-op on a store one process serves.
  Status TakeOver();
  // Queues the notice of a commit that just became durable.
  void Enqueue(std::string asset);
  // Notices delivered (program exited 0, notice removed) and runs that
  // failed, since Start. For tests and metrics.
  uint64_t delivered() const { return delivered_; }
  uint64_t failures() const { return failures_; }

 private:
  struct Pending {
    std::string asset;
    int64_t due_ns = 0;  // steady clock
    int attempts = 0;
  };
  void Loop();
  // Queues those of `assets` not queued or being delivered already.
  void Queue(std::vector<std::string> assets);
  // Runs the program for `p`; true once it succeeded and the notice is
  // removed (or the asset is gone).
  bool Deliver(const Pending& p);

  store::Store* const store_;
  const PostCommitSettings settings_;
  Mutex mu_;
  CondVar wake_;
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  std::set<std::string> known_ GUARDED_BY(mu_);  // queued or being delivered
  bool stopping_ GUARDED_BY(mu_) = false;
  std::atomic<bool> cancel_{false};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failures_{0};
  std::thread thread_;
};

}  // namespace upfs::session
