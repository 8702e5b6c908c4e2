// Status and Result<T>: how every upfs layer reports failure. It lives in
// base/, below store/, so that every layer includes it without reaching into
// another layer.
//
// Errors are values, never exceptions across an API. A Status is a code
// saying what kind of failure it is (the fs layer gives each code its
// errno and log level in one table, fs/errno_table.cc) and a message saying
// exactly what and where ("session 'x' file 'a/b': missing bytes [100,
// 200)").
//
// Both classes are [[nodiscard]]: a Status or Result dropped unread is a
// compiler warning (an error under UPFS_WERROR). A caller for whom a failure
// truly does not matter calls IgnoreError() and says why in a comment.
// UPFS_RETURN_IF_ERROR and UPFS_ASSIGN_OR_RETURN (at the end) write the
// usual early return.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from different threads freely.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace upfs {

class [[nodiscard]] Status {
 public:
  // New codes go last (kQuotaExceeded is the last one today). Keep in step
  // with CodeName() and the table in fs/errno_table.cc, which gives each
  // code its errno, log level and metrics label (static asserts there check
  // that every code up to the last has its row).
  enum class Code {
    kOk = 0,
    kNotFound,         // no such session, file, asset or record
    kExists,           // name taken
    kInvalidArgument,  // malformed input: manifest line, name, option
    kCorruption,       // stored bytes or records fail their checks
    kIOError,          // the storage medium failed
    kNoSpace,          // the storage medium is full
    kNotDirectory,
    kIsDirectory,
    kNotEmpty,
    kPermissionDenied,  // caller lacks the rights (EACCES)
    kNotPermitted,      // operation never allowed on this object (EPERM)
    kReadOnly,          // the committed side, or a read-only control file
    kHashMismatch,      // a file's SHA-256 differs from the manifest's
    kMissingData,       // a file has a gap before its length
    kStale,             // the session was committed or aborted meanwhile
    kBusy,              // the session is being finished
    kTooLarge,          // offset or length beyond what upfs stores
    kNameTooLong,
    kCrossSession,  // rename between sessions
    kNotSupported,
    kNoAttribute,    // xattr not set
    kWriteConflict,  // write-once session: different bytes for a range
    kOutOfMemory,
    kQuotaExceeded,  // a per-user limit (-o quota, -o max_sessions)
  };

  Status() = default;  // OK
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Exists(std::string msg) { return {Code::kExists, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status NotDirectory(std::string msg) { return {Code::kNotDirectory, std::move(msg)}; }
  static Status IsDirectory(std::string msg) { return {Code::kIsDirectory, std::move(msg)}; }
  static Status NotEmpty(std::string msg) { return {Code::kNotEmpty, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {Code::kPermissionDenied, std::move(msg)};
  }
  static Status NotPermitted(std::string msg) { return {Code::kNotPermitted, std::move(msg)}; }
  static Status ReadOnly(std::string msg) { return {Code::kReadOnly, std::move(msg)}; }
  static Status HashMismatch(std::string msg) { return {Code::kHashMismatch, std::move(msg)}; }
  static Status MissingData(std::string msg) { return {Code::kMissingData, std::move(msg)}; }
  static Status Stale(std::string msg) { return {Code::kStale, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status TooLarge(std::string msg) { return {Code::kTooLarge, std::move(msg)}; }
  static Status NameTooLong(std::string msg) { return {Code::kNameTooLong, std::move(msg)}; }
  static Status CrossSession(std::string msg) { return {Code::kCrossSession, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status NoAttribute(std::string msg) { return {Code::kNoAttribute, std::move(msg)}; }
  static Status WriteConflict(std::string msg) { return {Code::kWriteConflict, std::move(msg)}; }
  static Status OutOfMemory(std::string msg) { return {Code::kOutOfMemory, std::move(msg)}; }
  static Status QuotaExceeded(std::string msg) { return {Code::kQuotaExceeded, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  // The codes callers branch on; the rest are compared through code().
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsExists() const { return code_ == Code::kExists; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsStale() const { return code_ == Code::kStale; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsNoAttribute() const { return code_ == Code::kNoAttribute; }
  bool IsReadOnly() const { return code_ == Code::kReadOnly; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "Corruption: chunk 12@4096 truncated"; "OK" for success.
  std::string ToString() const;
  static const char* CodeName(Code code);

  // Returns a copy whose message is "context: message".
  Status WithContext(std::string_view context) const;

  // The caller decided this failure does not matter; say why at the call.
  void IgnoreError() const {}

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "a Result without a value needs a failed Status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // As Status::IgnoreError: neither the value nor the failure matters to
  // the caller; say why at the call.
  void IgnoreError() const {}

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace upfs

// Returns early from the calling function when `expr` yields a failed Status.
#define UPFS_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::upfs::Status upfs_status_ = (expr);        \
    if (!upfs_status_.ok()) return upfs_status_; \
  } while (0)

// Evaluates `expr`, a Result<T>. On failure returns its Status from the
// calling function; otherwise moves the value into `lhs`, which either
// declares a variable or names an existing one:
//
//   UPFS_ASSIGN_OR_RETURN(auto loc, m.Locate(id));
//   UPFS_ASSIGN_OR_RETURN(blobs, DirBlobFiles::Open(dir));
//
// It expands to several statements: write it as a statement of its own, not
// as the body of an unbraced if or loop.
#define UPFS_ASSIGN_OR_RETURN(lhs, ...) \
  UPFS_ASSIGN_OR_RETURN_IMPL_(UPFS_STATUS_CONCAT_(upfs_result_, __LINE__), lhs, __VA_ARGS__)

#define UPFS_ASSIGN_OR_RETURN_IMPL_(result, lhs, ...) \
  auto result = (__VA_ARGS__);                        \
  if (!result.ok()) return result.status();           \
  lhs = std::move(result).value()

#define UPFS_STATUS_CONCAT_(a, b) UPFS_STATUS_CONCAT_INNER_(a, b)
#define UPFS_STATUS_CONCAT_INNER_(a, b) a##b
