// Manifest: the parser for what `sha256sum` prints, the format a session is
// finished with. One line per file:
//
//   <64 hex digits><space><space or '*'><path>
//
// and, for names holding a backslash, newline or carriage return, the
// escaped form coreutils prints: a leading '\' and "\\", "\n", "\r" in the
// path. Hex digits may be upper or lower case (stored lower). Paths are
// relative to the session; "./" components are dropped; absolute paths,
// "..", and empty components are refused.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace upfs::session {

struct ManifestLine {
  size_t line_number = 0;  // 1-based
  std::string sha256;      // 64 lowercase hex digits
  std::string path;        // normalized, relative
};

// Parses a manifest, at most its first `max_lines` lines: the text after
// them is not looked at. Fails with InvalidArgument naming the first bad
// line and why. (A session with N files passes N + 1: a longer manifest is
// wrong anyway, and its first N + 1 lines already show how, so a huge one
// costs no memory beyond its text.)
Result<std::vector<ManifestLine>> ParseManifest(std::string_view text, size_t max_lines = SIZE_MAX);

// "a//b/./c" style checks: splits a relative path into its components, or
// fails with InvalidArgument.
Result<std::vector<std::string>> SplitRelativePath(std::string_view path);

}  // namespace upfs::session
