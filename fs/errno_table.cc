#include "fs/errno_table.h"

#include <cerrno>

namespace upfs::fs {

int ErrnoFor(Status::Code code) {
  using Code = Status::Code;
  switch (code) {
    case Code::kOk:
      return 0;

    // The codes with one obvious errno.
    case Code::kNotFound:
      return ENOENT;
    case Code::kExists:
      return EEXIST;
    case Code::kNotDirectory:
      return ENOTDIR;
    case Code::kIsDirectory:
      return EISDIR;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kOutOfMemory:
      return ENOMEM;
    case Code::kPermissionDenied:
      return EACCES;
    case Code::kBusy:
      // A session being finished by another handle: the caller may retry
      // once that commit has resolved.
      return EBUSY;

    // Judgment calls.
    case Code::kInvalidArgument:
      // A malformed manifest line or a name the namespace rejects. Also
      // what DESIGN.md promises for "malformed manifest or unlisted file".
      return EINVAL;
    case Code::kCorruption:
      // Stored bytes failed their checks. POSIX has no "corrupt" errno;
      // EIO is what every local filesystem returns for a bad block, and
      // tools treat it as fatal for that file, which is right. (EBADMSG is
      // reserved for hash mismatches the client can fix.)
      return EIO;
    case Code::kIOError:
      return EIO;
    case Code::kNotPermitted:
      // "Never allowed on this object" regardless of the caller's rights:
      // EPERM, as for unlink(2) of a directory or link(2) here.
      return EPERM;
    case Code::kReadOnly:
      // The committed side and .status: like a read-only mount, so cp,
      // rsync and file managers say "Read-only file system".
      return EROFS;
    case Code::kHashMismatch:
      // DESIGN.md: `sha256sum ... > .finish` must report "Bad message".
      return EBADMSG;
    case Code::kMissingData:
      // A gap before the file's length: "No data available" names the
      // problem better than EIO, and DESIGN.md fixes it.
      return ENODATA;
    case Code::kStale:
      // The session was committed or aborted under an open handle: the
      // same situation NFS reports for a file deleted on the server.
      return ESTALE;
    case Code::kTooLarge:
      // An offset or length past what a blob may hold: write(2)'s errno
      // for "beyond the maximum file size".
      return EFBIG;
    case Code::kCrossSession:
      // rename(2) between sessions: EXDEV makes mv fall back to copy +
      // delete, which is a correct way to move bytes between sessions.
      return EXDEV;
    case Code::kNotSupported:
      return EOPNOTSUPP;
    case Code::kNoAttribute:
      // getxattr(2)/removexattr(2) report a missing attribute as ENODATA
      // on Linux (ENOATTR is an alias of it).
      return ENODATA;
    case Code::kWriteConflict:
      // Write-once session, different bytes for a range already stored.
      // Not EIO (nothing failed) and not EROFS (the file is writable; the
      // same bytes succeed): EPERM says "this write is not allowed", and
      // dd/cp print "Operation not permitted" naming the file.
      return EPERM;
    case Code::kQuotaExceeded:
      // A per-user limit of open sessions' bytes or count: what a disk
      // quota gives, and cp/rsync/mkdir print "Disk quota exceeded".
      return EDQUOT;
  }
  // Only reachable with a value outside the enum (a cast bug); the switch
  // above handles every declared code.
  return EIO;
}

}  // namespace upfs::fs
