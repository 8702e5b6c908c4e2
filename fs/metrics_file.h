// MetricsFile: keeps the file -o metrics_file names holding the latest
// metrics (fs/metrics.h), for node_exporter's textfile collector, which
// may read it at any moment: each update writes PATH.tmp.PID beside it and
// renames that over PATH, so a reader sees the previous text or the new
// one, whole, never a partial file.
//
// Nothing is synced: metrics are rewritten every few seconds, and after a
// machine crash the counters start from 0 anyway.
//
// A failed update (directory missing, disk full, ...) is logged once, at
// warn, and once more when updates succeed again; it never affects the
// mount.
//
// Thread safety: Update may be called from one thread at a time (the
// writer's thread, then the unmount; main.cc orders them).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace upfs::fs {

class MetricsFile {
 public:
  // `render` gives the text to write; it must not throw.
  MetricsFile(std::string path, std::function<std::string()> render);

  // Renders the text and replaces the file with it (logging a failure as
  // said above).
  void Update();

  // Replaces the file with `text`: IOError naming the path and the
  // failing step; then PATH is as it was and no temporary file is left.
  Status Replace(std::string_view text) const;

  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  const std::string temp_path_;
  const std::function<std::string()> render_;
  bool failing_ = false;  // the last update failed (and was logged)
};

}  // namespace upfs::fs
