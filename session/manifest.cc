#include "session/manifest.h"

#include <cctype>

namespace upfs::session {
namespace {

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Printable form of a line for error messages: control bytes escaped and
// long lines cut, so a log line stays one line.
std::string Shown(std::string_view line) {
  std::string out;
  for (char c : line.substr(0, 120)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  if (line.size() > 120) out += "...";
  return out;
}

Status LineError(size_t n, std::string_view line, std::string_view why) {
  return Status::InvalidArgument("manifest line " + std::to_string(n) + " ('" + Shown(line) +
                                 "'): " + std::string(why));
}

}  // namespace

Result<std::vector<std::string>> SplitRelativePath(std::string_view path) {
  if (path.empty()) return Status::InvalidArgument("empty path");
  if (path.front() == '/') return Status::InvalidArgument("absolute path");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(pos, slash - pos);
    if (part.empty()) {
      if (slash != path.size()) return Status::InvalidArgument("empty path component");
    } else if (part == "..") {
      return Status::InvalidArgument("'..' in path");
    } else if (part != ".") {
      parts.emplace_back(part);
    }
    pos = slash + 1;
  }
  if (parts.empty()) return Status::InvalidArgument("path names no file");
  return parts;
}

Result<std::vector<ManifestLine>> ParseManifest(std::string_view text, size_t max_lines) {
  std::vector<ManifestLine> lines;
  size_t number = 0;
  while (!text.empty() && lines.size() < max_lines) {
    ++number;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);

    if (!line.empty() && line.back() == '\r') {
      return LineError(number, line, "ends with a carriage return (CRLF line endings); use LF");
    }
    if (line.empty()) return LineError(number, line, "empty line");
    bool escaped = line.front() == '\\';
    if (escaped) line.remove_prefix(1);
    if (line.size() < 64 + 2 + 1) {
      return LineError(number, line, "too short for '<64 hex digits>  <path>'");
    }
    ManifestLine out;
    out.line_number = number;
    for (size_t i = 0; i < 64; ++i) {
      if (!IsHex(line[i])) return LineError(number, line, "the hash is not 64 hex digits");
      out.sha256.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))));
    }
    if (line[64] != ' ' || (line[65] != ' ' && line[65] != '*')) {
      return LineError(number, line,
                       IsHex(line[64]) ? "the hash is longer than 64 hex digits"
                                       : "expected two spaces (or ' *') between hash and path");
    }
    std::string_view raw = line.substr(66);
    std::string path;
    if (escaped) {
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '\\') {
          path.push_back(raw[i]);
          continue;
        }
        if (++i == raw.size()) return LineError(number, line, "path ends in a lone backslash");
        switch (raw[i]) {
          case '\\':
            path.push_back('\\');
            break;
          case 'n':
            path.push_back('\n');
            break;
          case 'r':
            path.push_back('\r');
            break;
          default:
            return LineError(number, line, "unknown escape in path");
        }
      }
    } else {
      path = raw;
    }
    auto parts = SplitRelativePath(path);
    if (!parts.ok()) return LineError(number, line, parts.status().message());
    out.path.clear();
    for (const std::string& p : *parts) {
      if (!out.path.empty()) out.path.push_back('/');
      out.path += p;
    }
    lines.push_back(std::move(out));
  }
  return lines;
}

}  // namespace upfs::session
