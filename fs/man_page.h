// The man page upfs(8), made at build time (the upfs_man program) from a
// hand-written roff template, fs/upfs.8.in, whose placeholder lines are
// filled from the tables the program itself uses: the option table
// (command_line.h, which --help prints) and the errno table
// (errno_table.h). So the page's OPTIONS and ERRORS cannot drift from
// `upfs --help` and from what upfs returns.
//
// Placeholders, each on a line of its own:
//   @OPTIONS upfs@, @OPTIONS rados@, @OPTIONS fuse@   that group's options
//   @ERRORS@                                          every documented errno
// and, anywhere in a line, @VERSION@.
//
// Thread safety: functions of their arguments only.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace upfs::fs {

// `text` as roff body text (man(7)): backslashes as \e, every '-' as \-
// (so options and commands copy out of the rendered page as ASCII), and
// a line starting with '.' or '\'' guarded with \& so it is not a request.
std::string RoffEscape(std::string_view text);

// The page: `page_template` with its placeholders filled. InvalidArgument
// naming the line for an unknown placeholder, or one used twice or not at
// all; `out` is then unchanged.
Status MakeManPage(std::string_view page_template, std::string_view version, std::string* out);

}  // namespace upfs::fs
