#include "fs/errno_table.h"

#include <cerrno>
#include <iterator>

namespace upfs::fs {

namespace {

using Code = Status::Code;
namespace level = spdlog::level;

// One row per code, in the order of Status::Code; the comments give the
// reason for each judgment call.
constexpr CodeRow kRows[] = {
    {Code::kOk, 0, level::debug, "ok"},
    {Code::kNotFound, ENOENT, level::debug, "not_found"},
    {Code::kExists, EEXIST, level::info, "exists"},
    // A malformed manifest line or a name the namespace rejects. Also
    // what docs/semantics.md ("Errors") promises for a malformed manifest
    // or an unlisted file.
    {Code::kInvalidArgument, EINVAL, level::info, "invalid_argument"},
    // Stored bytes failed their checks. POSIX has no "corrupt" errno;
    // EIO is what every local filesystem returns for a bad block, and
    // tools treat it as fatal for that file, which is right. (EBADMSG is
    // reserved for hash mismatches the client can fix.)
    {Code::kCorruption, EIO, level::err, "corruption"},
    {Code::kIOError, EIO, level::err, "io_error"},
    {Code::kNoSpace, ENOSPC, level::warn, "no_space"},
    {Code::kNotDirectory, ENOTDIR, level::info, "not_directory"},
    {Code::kIsDirectory, EISDIR, level::info, "is_directory"},
    {Code::kNotEmpty, ENOTEMPTY, level::info, "not_empty"},
    {Code::kPermissionDenied, EACCES, level::info, "permission_denied"},
    // "Never allowed on this object" regardless of the caller's rights:
    // EPERM, as for unlink(2) of a directory or link(2) here.
    {Code::kNotPermitted, EPERM, level::info, "not_permitted"},
    // The committed side and .status: like a read-only mount, so cp,
    // rsync and file managers say "Read-only file system".
    {Code::kReadOnly, EROFS, level::info, "read_only"},
    // docs/semantics.md ("Finishing", "Errors"): `sha256sum ... > .finish`
    // must report "Bad message".
    {Code::kHashMismatch, EBADMSG, level::info, "hash_mismatch"},
    // A gap before the file's length: "No data available" names the
    // problem better than EIO, and docs/semantics.md ("Errors") fixes it.
    {Code::kMissingData, ENODATA, level::info, "missing_data"},
    // The session was committed or aborted under an open handle: the
    // same situation NFS reports for a file deleted on the server.
    {Code::kStale, ESTALE, level::info, "stale"},
    // A session being finished by another handle: the caller may retry
    // once that commit has resolved.
    {Code::kBusy, EBUSY, level::info, "busy"},
    // An offset or length past what a blob may hold: write(2)'s errno
    // for "beyond the maximum file size".
    {Code::kTooLarge, EFBIG, level::info, "too_large"},
    {Code::kNameTooLong, ENAMETOOLONG, level::info, "name_too_long"},
    // rename(2) between sessions: EXDEV makes mv fall back to copy +
    // delete, which is a correct way to move bytes between sessions.
    {Code::kCrossSession, EXDEV, level::info, "cross_session"},
    {Code::kNotSupported, EOPNOTSUPP, level::info, "not_supported"},
    // getxattr(2)/removexattr(2) report a missing attribute as ENODATA
    // on Linux (ENOATTR is an alias of it).
    {Code::kNoAttribute, ENODATA, level::debug, "no_attribute"},
    // Write-once session, different bytes for a range already stored.
    // Not EIO (nothing failed) and not EROFS (the file is writable; the
    // same bytes succeed): EPERM says "this write is not allowed", and
    // dd/cp print "Operation not permitted" naming the file.
    {Code::kWriteConflict, EPERM, level::info, "write_conflict"},
    {Code::kOutOfMemory, ENOMEM, level::warn, "out_of_memory"},
    // A per-user limit of open sessions' bytes or count: what a disk
    // quota gives, and cp/rsync/mkdir print "Disk quota exceeded".
    {Code::kQuotaExceeded, EDQUOT, level::info, "quota_exceeded"},
};

// kQuotaExceeded is the last code (base/status.h).
constexpr size_t kCodeCount = static_cast<size_t>(Code::kQuotaExceeded) + 1;
static_assert(std::size(kRows) == kCodeCount, "one row per Status code");

constexpr bool RowsInCodeOrder() {
  for (size_t i = 0; i < std::size(kRows); ++i) {
    if (static_cast<size_t>(kRows[i].code) != i) return false;
  }
  return true;
}
static_assert(RowsInCodeOrder(), "kRows[i] is the row of code i");

}  // namespace

const CodeRow& RowFor(Status::Code code) {
  // Only a value outside the enum (a cast bug) misses the table.
  static constexpr CodeRow kOutside = {Code::kIOError, EIO, level::warn, "unknown"};
  const auto i = static_cast<size_t>(code);
  return i < std::size(kRows) ? kRows[i] : kOutside;
}

int ErrnoFor(Status::Code code) { return RowFor(code).errnum; }

std::span<const ErrnoUse> DocumentedErrnos() {
  // Beside the table above, so a new errno there is written here too.
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
      {EFBIG,
       "a write or truncate past 2^62 bytes; an xattr value over 64 KiB; a manifest over "
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
      {EIO,
       "stored data failed its checks, the disk failed, or a RADOS operation failed or "
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
