// IgnoreRules: the patterns of files that tools leave behind in a session
// (rsync's temporary copies, editors' lock and swap files, macOS Finder
// metadata), which a commit leaves out unless the manifest lists them
// (docs/configuration.md, "Resuming, and tools' leftovers"; -o ignore).
//
// A pattern is a shell glob (fnmatch(3), no flags beyond FNM_PATHNAME):
// one without '/' is matched against a file's name, one with '/' against
// its path relative to the session, where '*' and '?' do not match '/'.
//
// Thread safety: immutable once made; const methods may be called from any
// number of threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace upfs::session {

// The patterns -o ignore= is a list of, separated by this.
inline constexpr char kIgnoreSeparator = ':';

class IgnoreRules {
 public:
  // The default list, each pattern for one tool's leftovers (see the .cc).
  static const std::vector<std::string>& Defaults();

  // No pattern: nothing is ever left out.
  IgnoreRules() = default;
  explicit IgnoreRules(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}

  // Parses a list "P1:P2:..." (-o ignore=); "" is the empty list.
  // InvalidArgument for an empty pattern in a non-empty list ("a::b") or a
  // NUL byte; `out` is then unchanged.
  static Status ParseList(std::string_view list, std::vector<std::string>* out);
  // The list as -o ignore= takes it.
  static std::string JoinList(const std::vector<std::string>& patterns);

  // The first pattern `path` (relative to the session) matches, or
  // nullptr: the file is not a leftover.
  const std::string* Match(std::string_view path) const;

  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

}  // namespace upfs::session
