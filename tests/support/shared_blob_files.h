// SharedBlobFiles: a BlobFiles that forwards to one shared instance, so
// that tests can close a store and open it again over the same bytes (and
// damage or drop them in between).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string_view>
#include <utility>

#include "store/blob_files.h"

namespace upfs::testing {

class SharedBlobFiles : public store::BlobFiles {
 public:
  explicit SharedBlobFiles(std::shared_ptr<store::BlobFiles> blobs) : blobs_(std::move(blobs)) {}
  Status Write(uint64_t blob, uint64_t offset, std::string_view data) override {
    return blobs_->Write(blob, offset, data);
  }
  Status Read(uint64_t blob, uint64_t offset, size_t n, char* out, size_t* present) const override {
    return blobs_->Read(blob, offset, n, out, present);
  }
  Status Truncate(uint64_t blob, uint64_t length, uint64_t end) override {
    return blobs_->Truncate(blob, length, end);
  }
  Status Sync() override { return blobs_->Sync(); }
  Status List(std::map<uint64_t, uint64_t>* bytes) const override { return blobs_->List(bytes); }

 private:
  std::shared_ptr<store::BlobFiles> blobs_;
};

}  // namespace upfs::testing
