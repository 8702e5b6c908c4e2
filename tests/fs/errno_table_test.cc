// The Status -> errno table: every code has the errno docs/semantics.md
// ("Errors", G4) promises, and no code is left without one.
#include <cerrno>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "fs/errno_table.h"

namespace upfs::fs {
namespace {

using Code = Status::Code;

// The whole table, as users see it. A new Status code must be added here
// (the loop below fails until it is).
const std::map<Code, int> kExpected = {
    {Code::kNotFound, ENOENT},
    {Code::kExists, EEXIST},
    {Code::kInvalidArgument, EINVAL},
    {Code::kCorruption, EIO},
    {Code::kIOError, EIO},
    {Code::kNoSpace, ENOSPC},
    {Code::kNotDirectory, ENOTDIR},
    {Code::kIsDirectory, EISDIR},
    {Code::kNotEmpty, ENOTEMPTY},
    {Code::kPermissionDenied, EACCES},
    {Code::kNotPermitted, EPERM},
    {Code::kReadOnly, EROFS},
    {Code::kHashMismatch, EBADMSG},
    {Code::kMissingData, ENODATA},
    {Code::kStale, ESTALE},
    {Code::kBusy, EBUSY},
    {Code::kTooLarge, EFBIG},
    {Code::kNameTooLong, ENAMETOOLONG},
    {Code::kCrossSession, EXDEV},
    {Code::kNotSupported, EOPNOTSUPP},
    {Code::kNoAttribute, ENODATA},
    {Code::kWriteConflict, EPERM},
    {Code::kOutOfMemory, ENOMEM},
    {Code::kQuotaExceeded, EDQUOT},
};

TEST_CASE("ErrnoFor maps kOk to no error") { CHECK(ErrnoFor(Code::kOk) == 0); }

TEST_CASE("ErrnoFor maps every Status code to its documented errno") {
  for (const auto& [code, expected] : kExpected) {
    INFO("code " << Status::CodeName(code));
    CHECK(ErrnoFor(code) == expected);
  }
}

TEST_CASE("every Status code has an entry in the table, and only EIO codes map to EIO") {
  const int first = static_cast<int>(Code::kOk) + 1;
  const int last = static_cast<int>(Code::kQuotaExceeded);
  for (int i = first; i <= last; ++i) {
    const auto code = static_cast<Code>(i);
    INFO("code #" << i << " " << Status::CodeName(code));
    auto it = kExpected.find(code);
    REQUIRE(it != kExpected.end());
    const int err = ErrnoFor(code);
    CHECK(err > 0);
    // EIO is the catch-all a missing case would fall into; only the
    // storage failures may have it.
    if (err == EIO) CHECK((code == Code::kCorruption || code == Code::kIOError));
  }
  CHECK(kExpected.size() == static_cast<size_t>(last - first + 1));
}

TEST_CASE("upfs(8) documents every errno ErrnoFor returns, each once") {
  std::set<int> documented;
  for (const ErrnoUse& use : DocumentedErrnos()) {
    INFO("errno " << use.errnum);
    CHECK(documented.insert(use.errnum).second);
    CHECK_FALSE(use.when.empty());
  }
  for (const auto& [code, expected] : kExpected) {
    INFO("code " << Status::CodeName(code));
    CHECK(documented.count(ErrnoFor(code)) == 1);
  }
}

}  // namespace
}  // namespace upfs::fs
