// The one way fs/ includes libfuse: pins the API level every file compiles
// against, so no file can pick up a different one by include order.
//
// 3.12 is the oldest API with the loop configuration object
// (fuse_loop_cfg_*, max_threads); Debian bookworm ships 3.14.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif

#include <fuse_lowlevel.h>
#include <fuse_opt.h>
