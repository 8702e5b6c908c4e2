// ErrnoFor: the single place where a upfs Status becomes an errno.
//
// Only fs/ speaks errno; the core reports Status codes (base/status.h).
// The table is complete by construction: it is a switch over every code
// with no default, so adding a code without an errno is a compiler
// warning (an error under UPFS_WERROR), and tests/fs/errno_table_test.cc
// checks the value chosen for each.
//
// Thread safety: a pure function.
#pragma once

#include <span>
#include <string_view>

#include "base/status.h"

namespace upfs::fs {

// The positive errno reported to the kernel for a failure with `code`;
// 0 for kOk.
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
