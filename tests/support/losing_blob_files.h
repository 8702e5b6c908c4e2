// LosingBlobFiles: BlobFiles over other BlobFiles that, while armed, loses
// writes after acknowledging them, as RADOS stripe writes can: Write
// returns OK, the bytes are never stored, and the loss shows up later, in
// the next Sync's status and in TakeLost for the blob (RadosBlobFiles,
// whose writes go out in the background). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "store/blob_files.h"

namespace upfs::testing {

class LosingBlobFiles : public store::BlobFiles {
 public:
  explicit LosingBlobFiles(
      std::unique_ptr<store::BlobFiles> base = std::make_unique<store::MemoryBlobFiles>())
      : base_(std::move(base)) {}
  void LoseWrites(bool on) { lose_ = on; }

  Status Write(uint64_t blob, uint64_t offset, std::string_view data) override {
    if (!lose_) return base_->Write(blob, offset, data);
    lost_.Add(blob, {offset, offset + data.size()});
    std::lock_guard lock(mu_);
    if (failed_.ok()) failed_ = Status::IOError("injected loss of a write acknowledged earlier");
    return Status::OK();
  }
  Status Read(uint64_t blob, uint64_t offset, size_t n, char* out, size_t* present) const override {
    return base_->Read(blob, offset, n, out, present);
  }
  Status Truncate(uint64_t blob, uint64_t length, uint64_t end) override {
    return base_->Truncate(blob, length, end);
  }
  Status Sync() override {
    UPFS_RETURN_IF_ERROR(base_->Sync());
    std::lock_guard lock(mu_);
    return std::exchange(failed_, Status::OK());
  }
  Status List(std::map<uint64_t, uint64_t>* bytes) const override { return base_->List(bytes); }
  std::vector<store::Extent> TakeLost(uint64_t blob) override { return lost_.Take(blob); }
  std::vector<uint64_t> BlobsWithLost() override { return lost_.Blobs(); }
  void RestoreLost(uint64_t blob, std::vector<store::Extent> lost) override {
    lost_.Restore(blob, std::move(lost));
  }

 private:
  const std::unique_ptr<store::BlobFiles> base_;
  std::atomic<bool> lose_{false};
  std::mutex mu_;
  store::LostRanges lost_;
  Status failed_;  // GUARDED_BY(mu_)
};

}  // namespace upfs::testing
