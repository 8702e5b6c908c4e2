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
      // what docs/semantics.md ("Errors") promises for a malformed manifest
      // or an unlisted file.
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
      // docs/semantics.md ("Finishing", "Errors"): `sha256sum ... > .finish`
      // must report "Bad message".
      return EBADMSG;
    case Code::kMissingData:
      // A gap before the file's length: "No data available" names the
      // problem better than EIO, and docs/semantics.md ("Errors") fixes it.
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

std::span<const ErrnoUse> DocumentedErrnos() {
  // Beside the switch above, so a new errno there is written here too.
  static constexpr ErrnoUse kUses[] = {
      {EBADMSG, "finish: a file's SHA-256 differs from the manifest's"},
      {ENODATA,
       "finish: a file has missing bytes before its length; also getxattr(2) of an attribute "
       "that is not set, as on any Linux file system"},
      {EINVAL,
       "finish: a malformed manifest line, bad hex, a duplicate line, a file the manifest does "
       "not list, a path that is not in the session; also an invalid name (.finish and .status "
       "are reserved in a session) or option"},
      {EROFS,
       "any write, create, rename, delete, setattr or xattr change under assets/; renaming "
       "anything but a session directory into assets/; opening .status for writing"},
      {EEXIST,
       "mkdir sessions/NAME when NAME is an open session or a committed asset; creating an "
       "existing name"},
      {ESTALE, "the session was committed or aborted while the file was open"},
      {EBUSY,
       "the session is being finished right now; or, with several mounts of a RADOS store, "
       "another mount holds the session and its lease is live (its log names that mount)"},
      {EFBIG, "a write or truncate past 2^62 bytes; an xattr value over 64 KiB; a manifest over "
              "256 MiB"},
      {ENAMETOOLONG, "a name over 255 bytes"},
      {EXDEV, "rename between two sessions (mv then copies instead)"},
      {EPERM,
       "a write-once session got different bytes for a range already received; hard links; "
       "symlinks; creating anything at the mount's root or directly in sessions/ other than a "
       "session directory; finish: the -o pre_commit program refused the commit (its first line "
       "of stderr is in .status)"},
      {EDQUOT,
       "a write that would take the bytes of its session owner's open sessions past -o quota, or "
       "a mkdir of a session past -o max_sessions (nothing of it is stored; .status and the log "
       "name the limit)"},
      {ENOSPC,
       "a write of upload data while the store's file system has less free space than -o "
       "reserve (finishing, aborting and deleting still work), or the database ran out of space"},
      {EIO, "stored data failed its checks, the disk failed, or a RADOS operation failed or "
            "timed out (logged at error level)"},
      {ENOTEMPTY, "rmdir of a directory that is not empty (rm -r of a session works)"},
      {ENOTDIR, "a path goes through a file as if it were a directory"},
      {EISDIR, "a directory where a file is needed (opened, read or written as a file)"},
      {EACCES, "the caller lacks the rights: file modes, another user's session"},
      {ENOENT, "no such session, file or asset"},
      {ENOMEM, "the daemon ran out of memory for a request"},
      {EOPNOTSUPP, "fallocate(2)"},
      {ERANGE, "getxattr(2) or listxattr(2) with a buffer too small for the value"},
  };
  return kUses;
}

}  // namespace upfs::fs
