#include "store/leveldb_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace upfs::store {
namespace {

leveldb::Status ErrnoStatus(const std::string& fname, int error) {
  if (error == ENOENT) return leveldb::Status::NotFound(fname, std::strerror(error));
  return leveldb::Status::IOError(fname, std::strerror(error));
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

int OpenRetrying(const std::string& fname, int flags) {
  int fd;
  do {
    fd = ::open(fname.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

class PreadFile : public leveldb::RandomAccessFile {
 public:
  PreadFile(std::string fname, int fd) : fname_(std::move(fname)), fd_(fd) {}
  ~PreadFile() override { ::close(fd_); }  // read-only: nothing to report

  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result,
                       char* scratch) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        *result = leveldb::Slice(scratch, 0);
        return ErrnoStatus(fname_, errno);
      }
      if (r == 0) break;  // end of file: LevelDB checks the length it got
      done += static_cast<size_t>(r);
    }
    *result = leveldb::Slice(scratch, done);
    return leveldb::Status::OK();
  }

 private:
  const std::string fname_;
  const int fd_;
};

// An append-only file with a small write buffer (LevelDB appends record
// headers of a few bytes) that starts writeback every kWritebackBytes.
// LevelDB uses one from one thread at a time.
class EarlyWritebackFile : public leveldb::WritableFile {
 public:
  EarlyWritebackFile(std::string fname, int fd) : fname_(std::move(fname)), fd_(fd) {}
  ~EarlyWritebackFile() override {
    // LevelDB may drop a file without Close() (a finished log); what is
    // buffered still goes to the file, as PosixEnv does.
    if (fd_ >= 0) Close();
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    const char* p = data.data();
    size_t n = data.size();
    // Small appends gather in the buffer; large ones go straight out.
    if (used_ + n <= kBufferBytes) {
      std::memcpy(buffer_.get() + used_, p, n);
      used_ += n;
      return leveldb::Status::OK();
    }
    leveldb::Status s = FlushBuffer();
    if (!s.ok()) return s;
    if (n <= kBufferBytes) {
      std::memcpy(buffer_.get(), p, n);
      used_ = n;
      return leveldb::Status::OK();
    }
    return WriteOut(p, n);
  }

  leveldb::Status Close() override {
    leveldb::Status s = FlushBuffer();
    if (::close(fd_) < 0 && s.ok()) s = ErrnoStatus(fname_, errno);
    fd_ = -1;
    return s;
  }

  leveldb::Status Flush() override { return FlushBuffer(); }

  leveldb::Status Sync() override {
    leveldb::Status s = FlushBuffer();
    if (!s.ok()) return s;
    if (::fdatasync(fd_) < 0) return ErrnoStatus(fname_, errno);
    return leveldb::Status::OK();
  }

 private:
  static constexpr size_t kBufferBytes = 64 << 10;

  leveldb::Status FlushBuffer() {
    leveldb::Status s = WriteOut(buffer_.get(), used_);
    used_ = 0;
    return s;
  }

  leveldb::Status WriteOut(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(fname_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
    if (written_ - writeback_from_ >= BoundedEnv::kWritebackBytes) {
      // Only a hint to the kernel: a failure here loses nothing (Sync()
      // reports real write errors), so it is ignored.
      (void)::sync_file_range(fd_, static_cast<off_t>(writeback_from_),
                              static_cast<off_t>(written_ - writeback_from_),
                              SYNC_FILE_RANGE_WRITE);
      writeback_from_ = written_;
    }
    return leveldb::Status::OK();
  }

  const std::string fname_;
  int fd_;
  const std::unique_ptr<char[]> buffer_{new char[kBufferBytes]};
  size_t used_ = 0;
  uint64_t written_ = 0;         // bytes handed to the kernel
  uint64_t writeback_from_ = 0;  // writeback was started for [0, this)
};

}  // namespace

leveldb::Status BoundedEnv::NewRandomAccessFile(const std::string& fname,
                                                leveldb::RandomAccessFile** result) {
  *result = nullptr;
  int fd = OpenRetrying(fname, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(fname, errno);
  *result = new PreadFile(fname, fd);
  return leveldb::Status::OK();
}

leveldb::Status BoundedEnv::NewWritableFile(const std::string& fname,
                                            leveldb::WritableFile** result) {
  if (!EndsWith(fname, ".log") && !EndsWith(fname, ".ldb"))
    return target()->NewWritableFile(fname, result);
  *result = nullptr;
  int fd = OpenRetrying(fname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(fname, errno);
  *result = new EarlyWritebackFile(fname, fd);
  return leveldb::Status::OK();
}

}  // namespace upfs::store
