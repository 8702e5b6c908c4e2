// Engine: the text of a session's .status (state, owner, expiry, and per
// file its length, missing ranges, hash and last error).
#include <algorithm>
#include <ctime>
#include <mutex>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

namespace {

// Missing ranges listed per file in .status before "... (N more)".
constexpr size_t kStatusMaxRanges = 16;

std::string TimeText(int64_t ns) {
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string Engine::Impl::Report(Session& s) {
  MutexLock lock(s.mu);
  if (!s.holder.empty()) {
    // Another mount's: its files as the store has them now.
    SessionRecord record = s.record;
    const int64_t last_activity_ns = s.last_activity_ns;
    const std::string holder = s.holder;
    lock.Unlock();
    Session copy;
    std::string text;
    {
      MutexLock copy_lock(copy.mu);
      copy.record = std::move(record);
      copy.last_activity_ns = last_activity_ns;
      Status loaded = LoadNodes(copy, /*index=*/false);
      if (!loaded.ok())
        copy.last_error = "reading the session from the store: " + loaded.ToString();
      text = "held_by: " + store->DescribeMount(holder) + "\n";
    }
    return text + Report(copy);
  }
  std::string out;
  auto line = [&out](std::string_view key, const std::string& value) {
    out += key;
    out += ": ";
    out += value;
    out += '\n';
  };
  const char* state = s.state == SessionState::kOpen        ? "open"
                      : s.state == SessionState::kFinishing ? "finishing"
                                                            : "gone";
  line("session", s.record.name);
  line("state", state);
  line("owner", std::to_string(s.record.uid) + ":" + std::to_string(s.record.gid));
  line("write_once", s.record.write_once ? "yes" : "no");
  line("created", TimeText(s.record.created_ns));
  line("last_activity", TimeText(s.last_activity_ns));
  line("expires", s.open_handles > 0 || s.writes_in_flight > 0
                      ? "not while files are open"
                      : TimeText(s.last_activity_ns + options.ttl_ns));
  line("open_handles", std::to_string(s.open_handles));
  // The owner's use of its limits, over all its open sessions.
  if (quota.HasLimits()) line("quota", quota.Describe(s.record.uid));
  std::vector<std::pair<std::string, const Node*>> files;
  for (const auto& [id, n] : s.nodes) {
    if (!n.is_dir) files.emplace_back(s.PathOf(id), &n);
  }
  std::sort(files.begin(), files.end());
  uint64_t total_len = 0, total_rx = 0, ignored = 0;
  std::string body;
  for (const auto& [path, n] : files) {
    FileState& f = *n->file;
    MutexLock flock(f.mu);
    uint64_t length = f.length.load();
    uint64_t rx = f.received.BytesReceived();
    total_len += length;
    total_rx += rx;
    std::vector<Extent> missing = f.received.Missing(length);
    std::string ranges;
    for (size_t i = 0; i < missing.size() && i < kStatusMaxRanges; ++i) {
      if (i) ranges += ' ';
      ranges += RangeText(missing[i].begin, missing[i].end);
    }
    if (missing.size() > kStatusMaxRanges) {
      ranges += " ... (" + std::to_string(missing.size() - kStatusMaxRanges) + " more)";
    }
    body += "\nfile: " + path + "\n";
    body += "length: " + std::to_string(length) + "\n";
    body += "received: " + std::to_string(rx) + "\n";
    body += "missing: " + (missing.empty() ? std::string("none") : ranges) + "\n";
    // A complete file's hash is known: what the background hasher has not
    // caught up yet is hashed here.
    if (missing.empty()) CatchUp(f);
    bool known = missing.empty() && f.hash.valid() && f.hash.frontier() == length;
    body += "sha256: " + (known ? f.hash.HexDigest() : std::string("pending")) + "\n";
    if (f.last_error) body += "last_error: " + *f.last_error + "\n";
    if (const std::string* pattern = ignore.Match(path)) {
      body += "ignored: " + *pattern + "\n";
      ++ignored;
    }
  }
  line("files", std::to_string(files.size()));
  line("bytes_total", std::to_string(total_len));
  line("bytes_received", std::to_string(total_rx));
  line("last_error", s.last_error.empty() ? "none" : s.last_error);
  // Files a commit would leave out unless the manifest lists them.
  if (ignored > 0) line("ignored", std::to_string(ignored));
  return out + body;
}

Result<std::string> Engine::StatusReport(std::string_view name) {
  auto s = impl_->FindSession(name);
  if (!s) return Status::NotFound("no open session " + Quote(name));
  return impl_->Report(*s);
}

}  // namespace upfs::session
