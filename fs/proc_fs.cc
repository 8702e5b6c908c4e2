#include "fs/proc_fs.h"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <vector>

namespace upfs::fs {
namespace {

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string EscapeMountPath(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  std::string field;
  while (in >> field) fields.push_back(field);
  return fields;
}

template <typename T>
std::optional<T> ParseNumber(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  return value;
}

// The whole of a small /proc file; empty if it cannot be read (the
// process or descriptor is gone).
std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value of "key:" in "key:<tab>value" lines (status, fdinfo).
std::optional<std::string> LineOf(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      return line.substr(key.size() + 1);
    }
  }
  return std::nullopt;
}

template <typename T>
std::optional<T> FieldOf(const std::string& text, std::string_view key) {
  std::optional<std::string> value = LineOf(text, key);
  if (!value) return std::nullopt;
  return ParseNumber<T>(*value);
}

}  // namespace

ProcFs::ProcFs(std::string root) : root_(std::move(root)) {}

bool ProcFs::SetMountPoint(const std::string& mountpoint) {
  std::ifstream in(root_ + "/self/mountinfo");
  const std::string escaped = EscapeMountPath(mountpoint);
  std::string line;
  std::string device;
  while (std::getline(in, line)) {
    // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ...; the last match is on top.
    const std::vector<std::string> fields = Fields(line);
    if (fields.size() >= 5 && fields[4] == escaped) device = fields[2];
  }
  device_ = device;
  return !device_.empty();
}

std::optional<pid_t> ProcFs::ProcessOf(pid_t tid) const {
  if (tid <= 0) return std::nullopt;  // not visible in our pid namespace
  return FieldOf<pid_t>(ReadSmallFile(root_ + "/" + std::to_string(tid) + "/status"), "Tgid");
}

std::optional<ThreadCredentials> ProcFs::CredentialsOf(pid_t tid) const {
  if (tid <= 0) return std::nullopt;
  const std::string status = ReadSmallFile(root_ + "/" + std::to_string(tid) + "/status");
  std::optional<std::string> caps = LineOf(status, "CapEff");
  std::optional<std::string> gids = LineOf(status, "Gid");  // real effective saved fs
  std::optional<std::string> groups = LineOf(status, "Groups");
  if (!caps || !gids || !groups) return std::nullopt;
  ThreadCredentials creds;
  std::string_view hex(*caps);
  while (!hex.empty() && (hex.front() == ' ' || hex.front() == '\t')) hex.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), creds.effective_caps, 16);
  if (ec != std::errc() || ptr == hex.data()) return std::nullopt;
  const std::vector<std::string> gid_fields = Fields(*gids);
  if (gid_fields.size() != 4) return std::nullopt;
  std::optional<uint32_t> fsgid = ParseNumber<uint32_t>(gid_fields[3]);
  if (!fsgid) return std::nullopt;
  creds.fsgid = *fsgid;
  for (const std::string& g : Fields(*groups)) {
    std::optional<uint32_t> gid = ParseNumber<uint32_t>(g);
    if (!gid) return std::nullopt;
    creds.groups.push_back(*gid);
  }
  return creds;
}

std::optional<bool> ProcFs::HasOpen(pid_t pid, uint64_t ino) const {
  if (pid <= 0 || device_.empty()) return std::nullopt;
  const std::string dir = root_ + "/" + std::to_string(pid);

  // The ids of this mount as the process sees it (its own namespace, bind
  // mounts): descriptors name their mount by id, not by device.
  std::set<uint64_t> mount_ids;
  {
    std::ifstream in(dir + "/mountinfo");
    if (!in) return std::nullopt;
    std::string line;
    while (std::getline(in, line)) {
      const std::vector<std::string> fields = Fields(line);
      if (fields.size() < 3 || fields[2] != device_) continue;
      if (auto id = ParseNumber<uint64_t>(fields[0])) mount_ids.insert(*id);
    }
  }
  if (mount_ids.empty()) return false;

  std::error_code ec;
  std::filesystem::directory_iterator fds(dir + "/fdinfo", ec);
  if (ec) return std::nullopt;
  for (const auto& entry : fds) {
    const std::string info = ReadSmallFile(entry.path().string());
    std::optional<uint64_t> mnt_id = FieldOf<uint64_t>(info, "mnt_id");
    if (!mnt_id) continue;  // closed meanwhile
    if (mount_ids.count(*mnt_id) == 0) continue;
    std::optional<uint64_t> fd_ino = FieldOf<uint64_t>(info, "ino");
    if (!fd_ino) return std::nullopt;  // a kernel without fdinfo's ino
    if (*fd_ino == ino) return true;
  }
  return false;
}

}  // namespace upfs::fs
