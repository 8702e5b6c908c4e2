// Metrics: the Prometheus text exposition (format 0.0.4) of what a mount
// did, for node_exporter's textfile collector (-o metrics_file;
// docs/configuration.md, "Metrics", lists every metric). Names start with upfs_, counters end in
// _total, and each family has its HELP and TYPE lines.
//
// Thread safety: functions of their arguments only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "fs/request_counters.h"
#include "session/engine.h"
#include "store/store.h"

namespace upfs::fs {

// Everything one exposition shows, read at one time.
struct MetricsSnapshot {
  session::Engine::Stats engine;
  RequestCounters::Snapshot requests;
  // The space statfs reports (UpfsFs::StoreSpace); none: not shown.
  std::optional<store::Space> space;
};

// The exposition text of `m`.
std::string RenderMetrics(const MetricsSnapshot& m);

// A label value as the format writes it between double quotes: backslash,
// double quote and line feed escaped.
std::string EscapeLabelValue(std::string_view value);
// A HELP text: backslash and line feed escaped.
std::string EscapeHelp(std::string_view text);

// The `reason` label of a finish that failed with `code`: "hash_mismatch",
// "missing_data", "not_permitted" (pre_commit refused), ... The labels
// live in the table of errno_table.h.
const char* FinishFailureReason(Status::Code code);

}  // namespace upfs::fs
