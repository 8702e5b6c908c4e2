#include "session/ignore_rules.h"

#include <fnmatch.h>

namespace upfs::session {

// Each default names leftovers of one tool that nobody means to upload,
// chosen narrowly: a name a person plausibly gives a file is not in here
// (no "*~" backups, no "*.tmp"). A file a manifest lists is committed
// whatever it matches, and every file left out is reported.
const std::vector<std::string>& IgnoreRules::Defaults() {
  static const std::vector<std::string> kDefaults = {
      // rsync's temporary copy: "." NAME "." and six random characters
      // (mkstemp), renamed over NAME once complete; left behind when the
      // transfer is cut off (docs/configuration.md: "Resuming"). Six characters that are
      // not dots, so ".a.tar.gz" is not one; ".notes.backup" is (list it
      // in the manifest, or set -o ignore).
      ".*.[!.][!.][!.][!.][!.][!.]",
      // GNOME (GIO's g_file_replace): the copy written before a rename.
      ".goutputstream-*",
      // LibreOffice's lock file beside a document being edited.
      ".~lock.*#",
      // macOS Finder: folder view settings, and AppleDouble files holding
      // resource forks and xattrs on file systems without them.
      ".DS_Store",
      "._*",
      // vim's swap file, emacs's auto-save file.
      ".*.swp",
      "#*#",
  };
  return kDefaults;
}

Status IgnoreRules::ParseList(std::string_view list, std::vector<std::string>* out) {
  std::vector<std::string> patterns;
  if (list.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("-o ignore: a pattern holds a NUL byte");
  }
  while (!list.empty()) {
    const size_t end = list.find(kIgnoreSeparator);
    std::string_view pattern = list.substr(0, end);
    if (pattern.empty()) {
      return Status::InvalidArgument(std::string("-o ignore: an empty pattern (two '") +
                                     kIgnoreSeparator + "' in a row, or one at an end)");
    }
    patterns.emplace_back(pattern);
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
    if (list.empty()) {
      return Status::InvalidArgument(std::string("-o ignore: an empty pattern after the last '") +
                                     kIgnoreSeparator + "'");
    }
  }
  *out = std::move(patterns);
  return Status::OK();
}

std::string IgnoreRules::JoinList(const std::vector<std::string>& patterns) {
  std::string list;
  for (const std::string& p : patterns) {
    if (!list.empty()) list.push_back(kIgnoreSeparator);
    list += p;
  }
  return list;
}

const std::string* IgnoreRules::Match(std::string_view path) const {
  if (patterns_.empty()) return nullptr;
  const std::string whole(path);
  const size_t slash = whole.rfind('/');
  const char* name = whole.c_str() + (slash == std::string::npos ? 0 : slash + 1);
  for (const std::string& p : patterns_) {
    const bool on_path = p.find('/') != std::string::npos;
    if (fnmatch(p.c_str(), on_path ? whole.c_str() : name, on_path ? FNM_PATHNAME : 0) == 0)
      return &p;
  }
  return nullptr;
}

}  // namespace upfs::session
