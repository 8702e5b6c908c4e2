// The Status -> errno table: every code has the errno docs/semantics.md
// ("Errors", G4) promises, and no code is left without one.
#include "fs/errno_table.h"

#include <cerrno>
#include <map>
#include <set>
#include <string>

#include <catch2/catch.hpp>

namespace upfs::fs {
namespace {

using Code = Status::Code;
namespace level = spdlog::level;

struct Expected {
  int errnum;
  level::level_enum level;
};

// The whole table, as users see it and as the log shows it. A new Status
// code must be added here (the loop below fails until it is).
const std::map<Code, Expected> kExpected = {
    {Code::kNotFound, {ENOENT, level::debug}},
    {Code::kExists, {EEXIST, level::info}},
    {Code::kInvalidArgument, {EINVAL, level::info}},
    {Code::kCorruption, {EIO, level::err}},
    {Code::kIOError, {EIO, level::err}},
    {Code::kNoSpace, {ENOSPC, level::warn}},
    {Code::kNotDirectory, {ENOTDIR, level::info}},
    {Code::kIsDirectory, {EISDIR, level::info}},
    {Code::kNotEmpty, {ENOTEMPTY, level::info}},
    {Code::kPermissionDenied, {EACCES, level::info}},
    {Code::kNotPermitted, {EPERM, level::info}},
    {Code::kReadOnly, {EROFS, level::info}},
    {Code::kHashMismatch, {EBADMSG, level::info}},
    {Code::kMissingData, {ENODATA, level::info}},
    {Code::kStale, {ESTALE, level::info}},
    {Code::kBusy, {EBUSY, level::info}},
    {Code::kTooLarge, {EFBIG, level::info}},
    {Code::kNameTooLong, {ENAMETOOLONG, level::info}},
    {Code::kCrossSession, {EXDEV, level::info}},
    {Code::kNotSupported, {EOPNOTSUPP, level::info}},
    {Code::kNoAttribute, {ENODATA, level::debug}},
    {Code::kWriteConflict, {EPERM, level::info}},
    {Code::kOutOfMemory, {ENOMEM, level::warn}},
    {Code::kQuotaExceeded, {EDQUOT, level::info}},
};

TEST_CASE("ErrnoFor maps kOk to no error") { CHECK(ErrnoFor(Code::kOk) == 0); }

TEST_CASE("ErrnoFor maps every Status code to its documented errno") {
  for (const auto& [code, expected] : kExpected) {
    INFO("code " << Status::CodeName(code));
    CHECK(ErrnoFor(code) == expected.errnum);
  }
}

TEST_CASE("every Status code logs at its level, and only durability and corruption at error") {
  for (const auto& [code, expected] : kExpected) {
    INFO("code " << Status::CodeName(code));
    const CodeRow& row = RowFor(code);
    CHECK(row.code == code);
    CHECK(row.level == expected.level);
    CHECK((row.level == level::debug || row.level == level::info || row.level == level::warn ||
           row.level == level::err));
    // STYLE.md: error = durability or corruption.
    CHECK((row.level == level::err) == (code == Code::kCorruption || code == Code::kIOError));
  }
}

TEST_CASE("a code outside the enum gets EIO, a warning and the unknown label") {
  const CodeRow& row = RowFor(static_cast<Code>(1000));
  CHECK(row.errnum == EIO);
  CHECK(row.level == level::warn);
  CHECK(std::string(row.reason) == "unknown");
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
