#include "store/leveldb_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace upfs::store {
namespace {

leveldb::Status ErrnoStatus(const std::string& fname, int error) {
  if (error == ENOENT) return leveldb::Status::NotFound(fname, std::strerror(error));
  return leveldb::Status::IOError(fname, std::strerror(error));
}

class PreadFile : public leveldb::RandomAccessFile {
 public:
  PreadFile(std::string fname, int fd) : fname_(std::move(fname)), fd_(fd) {}
  ~PreadFile() override { ::close(fd_); }  // read-only: nothing to report

  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result, char* scratch) const override {
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

}  // namespace

leveldb::Status PreadFilesEnv::NewRandomAccessFile(const std::string& fname, leveldb::RandomAccessFile** result) {
  *result = nullptr;
  int fd;
  do {
    fd = ::open(fname.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(fname, errno);
  *result = new PreadFile(fname, fd);
  return leveldb::Status::OK();
}

}  // namespace upfs::store
