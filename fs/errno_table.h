// ErrnoFor: the single place where a upfs Status becomes an errno.
//
// Only fs/ speaks errno; the core reports Status codes (store/status.h).
// The table is complete by construction: it is a switch over every code
// with no default, so adding a code without an errno is a compiler
// warning (an error under UPFS_WERROR), and tests/fs/errno_table_test.cc
// checks the value chosen for each.
//
// Thread safety: a pure function.
#pragma once

#include "store/status.h"

namespace upfs::fs {

// The positive errno reported to the kernel for a failure with `code`;
// 0 for kOk.
int ErrnoFor(Status::Code code);

}  // namespace upfs::fs
