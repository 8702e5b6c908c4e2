#include "fs/metrics.h"

#include <cstring>
#include <initializer_list>
#include <utility>

#include <spdlog/fmt/fmt.h>

#include "fs/errno_table.h"

namespace upfs::fs {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

// Writes one exposition: families, each announced once, then its samples.
class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name,
                   EscapeHelp(help), name, type);
  }

  template <typename Value>
  void Sample(std::string_view name, std::initializer_list<Label> labels, Value value) {
    text_ += name;
    if (labels.size() != 0) {
      char separator = '{';
      for (const auto& [key, label_value] : labels) {
        fmt::format_to(std::back_inserter(text_), "{}{}=\"{}\"", separator, key,
                       EscapeLabelValue(label_value));
        separator = ',';
      }
      text_ += '}';
    }
    fmt::format_to(std::back_inserter(text_), " {}\n", value);
  }
  template <typename Value>
  void Sample(std::string_view name, Value value) {
    Sample(name, {}, value);
  }

  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

// An errno's label: its name ("ENOENT").
std::string ErrnoLabel(int err) {
  if (err == RequestCounters::kOtherErrno) return "other";
  const char* name = strerrorname_np(err);
  return name ? name : std::to_string(err);
}

void RenderFinishes(const session::Engine::Stats& e, Exposition& out) {
  out.Family("upfs_commits_total", "counter",
             "Sessions committed (close of .finish, or mv into assets/).");
  out.Sample("upfs_commits_total", e.commits);

  out.Family("upfs_finish_failures_total", "counter",
             "Finishes that failed, by reason (hash_mismatch, missing_data, invalid_argument, "
             "not_permitted for a pre_commit refusal, busy, ...).");
  for (size_t code = 1; code < e.failed_finishes.size(); ++code) {
    out.Sample("upfs_finish_failures_total",
               {{"reason", FinishFailureReason(static_cast<Status::Code>(code))}},
               e.failed_finishes[code]);
  }

  out.Family("upfs_finish_duration_seconds", "histogram",
             "How long finishes took, committed or failed.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < e.finish_buckets.size(); ++i) {
    cumulative += e.finish_buckets[i];
    const bool last = i >= std::size(session::Engine::kFinishBuckets);
    const std::string le = last ? "+Inf" : fmt::format("{}", session::Engine::kFinishBuckets[i]);
    out.Sample("upfs_finish_duration_seconds_bucket", {{"le", le}}, cumulative);
  }
  out.Sample("upfs_finish_duration_seconds_sum", e.finish_seconds_sum);
  out.Sample("upfs_finish_duration_seconds_count", cumulative);
}

void RenderRequests(const RequestCounters::Snapshot& r, Exposition& out) {
  out.Family("upfs_fuse_requests_total", "counter", "FUSE requests answered, by operation.");
  for (size_t op = 0; op < kFuseOpCount; ++op) {
    out.Sample("upfs_fuse_requests_total", {{"op", FuseOpName(static_cast<FuseOp>(op))}},
               r.requests[op]);
  }
  out.Family("upfs_fuse_errors_total", "counter",
             "FUSE requests that failed, by operation and errno.");
  for (const RequestCounters::Error& e : r.errors) {
    const std::string err = ErrnoLabel(e.err);
    out.Sample("upfs_fuse_errors_total", {{"op", FuseOpName(e.op)}, {"errno", err}}, e.count);
  }
}

// The text format's escapes: backslash and line feed everywhere, and the
// double quote inside label values.
std::string Escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) { return Escape(value, /*quote=*/true); }

std::string EscapeHelp(std::string_view text) { return Escape(text, /*quote=*/false); }

const char* FinishFailureReason(Status::Code code) { return RowFor(code).reason; }

std::string RenderMetrics(const MetricsSnapshot& m) {
  const session::Engine::Stats& e = m.engine;
  Exposition out;
  out.Family("upfs_open_sessions", "gauge",
             "Upload sessions open now (not committed, aborted or expired).");
  out.Sample("upfs_open_sessions", e.open_sessions);
  out.Family("upfs_assets", "gauge", "Committed assets in the store.");
  out.Sample("upfs_assets", e.assets);

  RenderFinishes(e, out);

  out.Family("upfs_received_bytes_total", "counter",
             "Bytes writes added to session files (a rewritten range counts once).");
  out.Sample("upfs_received_bytes_total", e.bytes_received);
  out.Family("upfs_committed_bytes_total", "counter",
             "Bytes of the files that commits made assets.");
  out.Sample("upfs_committed_bytes_total", e.bytes_committed);

  RenderRequests(m.requests, out);

  if (m.space) {
    out.Family(
        "upfs_store_size_bytes", "gauge",
        "Size of what holds the store, as statfs reports it: the store directory's file system, "
        "or on RADOS the smaller of the pool's quota and the cluster's capacity.");
    out.Sample("upfs_store_size_bytes", m.space->total_bytes);
    out.Family("upfs_store_free_bytes", "gauge",
               "Bytes of it still free for uploads, as statfs reports them.");
    out.Sample("upfs_store_free_bytes", m.space->free_bytes);
  }

  out.Family("upfs_quota_refusals_total", "counter",
             "Writes and mkdirs refused with EDQUOT (-o quota, -o max_sessions).");
  out.Sample("upfs_quota_refusals_total", e.quota_refusals);

  out.Family("upfs_hook_runs_total", "counter",
             "Runs of the commit hooks (-o pre_commit, -o post_commit).");
  out.Sample("upfs_hook_runs_total", {{"hook", "pre_commit"}}, e.pre_commit_runs);
  out.Sample("upfs_hook_runs_total", {{"hook", "post_commit"}}, e.post_commit_runs);
  out.Family("upfs_hook_failures_total", "counter",
             "Hook runs that failed: a pre_commit refusal, a post_commit attempt to be retried.");
  out.Sample("upfs_hook_failures_total", {{"hook", "pre_commit"}}, e.pre_commit_refusals);
  out.Sample("upfs_hook_failures_total", {{"hook", "post_commit"}}, e.post_commit_failures);
  return out.Take();
}

}  // namespace upfs::fs
