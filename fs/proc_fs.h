// ProcFs: what /proc says about the processes using the mount, for the
// questions the fs layer cannot answer from FUSE requests alone: is this
// close of `.finish` its opener's last descriptor of it? (See
// FinishHandles.) Does the writer of a setuid file hold CAP_FSETID, and is
// it in the file's group? (See session::Credentials.)
//
// Everything is read fresh on each call, and every answer may be "don't
// know" (nullopt): the process is gone, /proc is not readable (another
// user's process under a non-root daemon), or the kernel predates the
// fields used (`ino:` in fdinfo, Linux 5.14). Callers treat "don't know"
// as "not its last close", which only delays a commit to release.
//
// Thread safety: const methods may be called concurrently; SetMountPoint
// must happen before any of them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace upfs::fs {

// The questions FinishHandles asks; ProcFs answers them from /proc, tests
// with a fake.
class ProcessView {
 public:
  virtual ~ProcessView() = default;
  // The process (thread group id) that thread `tid` belongs to.
  virtual std::optional<pid_t> ProcessOf(pid_t tid) const = 0;
  // Whether process `pid` has a descriptor open on inode `ino` of this
  // mount.
  virtual std::optional<bool> HasOpen(pid_t pid, uint64_t ino) const = 0;
};

// A thread's credentials, from the `CapEff:`, `Gid:` and `Groups:` lines
// of its status.
struct ThreadCredentials {
  uint64_t effective_caps = 0;  // bit N: capability N (CAP_FSETID is 4)
  uint32_t fsgid = 0;
  std::vector<uint32_t> groups;  // supplementary
};

class ProcFs : public ProcessView {
 public:
  // `root` is where procfs is mounted; tests point it at a fake tree.
  explicit ProcFs(std::string root = "/proc");

  // Finds this mount's device number in our own mount table; false if
  // `mountpoint` is not mounted there. Until it succeeds, HasOpen answers
  // nullopt. Reads /proc, so no request to the mount itself is made (it
  // may not be serving yet).
  bool SetMountPoint(const std::string& mountpoint);

  std::optional<pid_t> ProcessOf(pid_t tid) const override;
  std::optional<bool> HasOpen(pid_t pid, uint64_t ino) const override;
  std::optional<ThreadCredentials> CredentialsOf(pid_t tid) const;

 private:
  const std::string root_;
  std::string device_;  // "major:minor" of the mount; empty: unknown
};

}  // namespace upfs::fs
