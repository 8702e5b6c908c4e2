#include "base/status.h"

namespace upfs {

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "Not found";
    case Code::kExists:
      return "Already exists";
    case Code::kInvalidArgument:
      return "Invalid argument";
    case Code::kCorruption:
      return "Corruption";
    case Code::kIOError:
      return "I/O error";
    case Code::kNoSpace:
      return "No space";
    case Code::kNotDirectory:
      return "Not a directory";
    case Code::kIsDirectory:
      return "Is a directory";
    case Code::kNotEmpty:
      return "Not empty";
    case Code::kPermissionDenied:
      return "Permission denied";
    case Code::kNotPermitted:
      return "Not permitted";
    case Code::kReadOnly:
      return "Read-only";
    case Code::kHashMismatch:
      return "Hash mismatch";
    case Code::kMissingData:
      return "Missing data";
    case Code::kStale:
      return "Stale";
    case Code::kBusy:
      return "Busy";
    case Code::kTooLarge:
      return "Too large";
    case Code::kNameTooLong:
      return "Name too long";
    case Code::kCrossSession:
      return "Cross-session";
    case Code::kNotSupported:
      return "Not supported";
    case Code::kNoAttribute:
      return "No such attribute";
    case Code::kWriteConflict:
      return "Write conflict";
    case Code::kOutOfMemory:
      return "Out of memory";
    case Code::kQuotaExceeded:
      return "Quota exceeded";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = CodeName(code_);
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

}  // namespace upfs
