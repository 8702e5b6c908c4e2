// The Status code table of fs/: for each code, the errno the kernel gets,
// how loud the failure funnel logs it, and its label in the metrics. The
// single place where a upfs Status becomes an errno.
//
// Only fs/ speaks errno; the core reports Status codes (base/status.h).
// The table has one row per code, in the order of Status::Code: static
// asserts in errno_table.cc check the order and the count up to the last
// code, so a code inserted without its row does not compile, and
// tests/fs/errno_table_test.cc checks the values chosen for each.
//
// Thread safety: constant data and pure functions.
#pragma once

#include <span>
#include <string_view>

#include <spdlog/common.h>

#include "base/status.h"

namespace upfs::fs {

// How fs/ answers and reports a failure with one Status code.
struct CodeRow {
  Status::Code code;
  // The positive errno reported to the kernel; 0 for kOk.
  int errnum;
  // How loud the failure funnel (upfs_fs.cc ReplyFailure) logs it. A miss
  // (no such name, no such xattr) answers a question the kernel asks all
  // the time (revalidating entries, probing security.capability before
  // every write): debug. A request the client got wrong: info, once. The
  // daemon or its storage failing: warn; durability or corruption: error.
  spdlog::level::level_enum level;
  // The `reason` label of upfs_finish_failures_total: snake_case, one of
  // its own per code.
  const char* reason;
};

// The row of `code`. A value outside the enum (a cast bug) gets EIO,
// warn and "unknown".
const CodeRow& RowFor(Status::Code code);

// RowFor(code).errnum.
int ErrnoFor(Status::Code code);

// An errno upfs reports, and when: the ERRORS section of upfs(8).
struct ErrnoUse {
  int errnum;
  std::string_view when;  // plain text, one paragraph
};

// Every errno ErrnoFor returns (tests/fs/errno_table_test.cc checks that
// none is missing) and the ones fs/ replies without a Status (ERANGE), in
// the order upfs(8) lists them.
std::span<const ErrnoUse> DocumentedErrnos();

}  // namespace upfs::fs
