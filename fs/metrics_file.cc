#include "fs/metrics_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

namespace upfs::fs {

MetricsFile::MetricsFile(std::string path, std::function<std::string()> render)
    : path_(std::move(path)),
      temp_path_(path_ + ".tmp." + std::to_string(getpid())),
      render_(std::move(render)) {}

Status MetricsFile::Replace(std::string_view text) const {
  const auto failed = [this](const char* step, int err) {
    unlink(temp_path_.c_str());
    return Status::IOError("metrics file " + path_ + ": " + step + " " + temp_path_ + ": " +
                           std::strerror(err));
  };
  // 0644: node_exporter usually runs as a user of its own.
  const int fd = open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return Status::IOError("metrics file " + path_ + ": creating " + temp_path_ + ": " +
                           std::strerror(err));
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n == 0 ? EIO : errno;
      close(fd);
      return failed("writing", err);
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return failed("closing", errno);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) return failed("renaming", errno);
  return Status::OK();
}

void MetricsFile::Update() {
  const Status st = Replace(render_());
  if (!st.ok() && !failing_) {
    spdlog::warn("{} (the mount goes on; logged again only once it works)", st.message());
  } else if (st.ok() && failing_) {
    spdlog::info("metrics file {} written again", path_);
  }
  failing_ = !st.ok();
}

}  // namespace upfs::fs
