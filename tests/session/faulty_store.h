// FaultyStore: a Store that forwards everything to another Store and fails
// chosen writes with IOError, so tests can see what a failed durable write
// leaves behind (mountpoint-s3's "store that fails on the Nth call").
//
// Faults are armed from the test thread while the engine may be running on
// others; every knob is thread-safe. A failed call changes nothing in the
// wrapped store.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace upfs::session::testing {

class FaultyStore : public store::Store {
 public:
  explicit FaultyStore(std::unique_ptr<store::Store> base)
      : base_(std::move(base)), faults_(std::make_shared<Faults>()) {}

  // The `n`th Apply from now fails (1: the very next one); 0 disarms.
  void FailNthApply(int n) {
    std::lock_guard lock(faults_->mu);
    faults_->apply_countdown = n;
  }
  // While on, every Apply with sync=true (a commit) fails.
  void FailSyncedApplies(bool on) { faults_->fail_synced = on; }
  // While on, every ByteSink::WriteAt fails.
  void FailBlobWrites(bool on) { faults_->fail_blob_writes = on; }
  // While on, every ByteSink::ReadAt waits until it is off again.
  void HoldBlobReads(bool on) {
    {
      std::lock_guard lock(faults_->mu);
      faults_->hold_reads = on;
    }
    faults_->reads_released.notify_all();
  }
  int blob_reads() const { return faults_->blob_reads; }
  void Disarm() {
    FailNthApply(0);
    FailSyncedApplies(false);
    FailBlobWrites(false);
  }

  int apply_calls() const { return faults_->apply_calls; }
  int compact_calls() const { return faults_->compact_calls; }
  int synced_apply_calls() const { return faults_->synced_apply_calls; }
  int injected_failures() const { return faults_->injected_failures; }

  store::Store& base() { return *base_; }

  // ---- Store ----
  Status Apply(const store::Batch& batch, bool sync) override {
    ++faults_->apply_calls;
    if (sync) ++faults_->synced_apply_calls;
    bool fail = sync && faults_->fail_synced;
    {
      std::lock_guard lock(faults_->mu);
      if (faults_->apply_countdown > 0 && --faults_->apply_countdown == 0) fail = true;
    }
    if (fail) {
      ++faults_->injected_failures;
      return Status::IOError(std::string("injected failure of ") +
                             (sync ? "a synced" : "an unsynced") + " Apply");
    }
    return base_->Apply(batch, sync);
  }
  Result<uint64_t> NewIds(uint64_t count) override { return base_->NewIds(count); }
  std::unique_ptr<store::ByteSink> OpenBlob(uint64_t blob) override {
    return std::make_unique<FaultySink>(base_->OpenBlob(blob), faults_);
  }
  std::unique_ptr<store::ByteSink> OpenCommittedBlob(uint64_t blob) override {
    return std::make_unique<FaultySink>(base_->OpenCommittedBlob(blob), faults_);
  }
  Status ListSessions(std::vector<store::SessionRecord>* out) const override {
    return base_->ListSessions(out);
  }
  Status GetSession(std::string_view name, store::SessionRecord* out) const override {
    return base_->GetSession(name, out);
  }
  Status ListNodes(uint64_t session_id, std::vector<store::NodeRecord>* out) const override {
    return base_->ListNodes(session_id, out);
  }
  Status GetAsset(std::string_view name, store::AssetRecord* out) const override {
    return base_->GetAsset(name, out);
  }
  Status ListAssets(std::vector<store::AssetRecord>* out) const override {
    return base_->ListAssets(out);
  }
  Status GetAssetEntry(std::string_view asset, std::string_view dir, std::string_view name,
                       store::AssetEntry* out) const override {
    return base_->GetAssetEntry(asset, dir, name, out);
  }
  Status ListAssetDir(std::string_view asset, std::string_view dir,
                      std::vector<store::AssetEntry>* out) const override {
    return base_->ListAssetDir(asset, dir, out);
  }
  Status LocateId(uint64_t id, store::AssetLocation* out) const override {
    return base_->LocateId(id, out);
  }
  Status ListNotices(std::vector<std::string>* out) const override {
    return base_->ListNotices(out);
  }
  Status ListAssetEntries(std::string_view asset,
                          std::vector<store::AssetEntry>* out) const override {
    return base_->ListAssetEntries(asset, out);
  }
  Status ListRemovedBlobs(std::vector<uint64_t>* out) const override {
    return base_->ListRemovedBlobs(out);
  }
  Status Compact() override {
    ++faults_->compact_calls;
    return base_->Compact();
  }

 private:
  // Shared with the sinks, which may outlive a reconfiguration but not the
  // store's owner.
  struct Faults {
    std::mutex mu;
    int apply_countdown = 0;  // GUARDED_BY(mu)
    bool hold_reads = false;  // GUARDED_BY(mu)
    std::condition_variable reads_released;
    std::atomic<int> blob_reads{0};
    std::atomic<bool> fail_synced{false};
    std::atomic<bool> fail_blob_writes{false};
    std::atomic<int> apply_calls{0};
    std::atomic<int> compact_calls{0};
    std::atomic<int> synced_apply_calls{0};
    std::atomic<int> injected_failures{0};
  };

  class FaultySink : public store::ByteSink {
   public:
    FaultySink(std::unique_ptr<store::ByteSink> base, std::shared_ptr<Faults> faults)
        : base_(std::move(base)), faults_(std::move(faults)) {}
    Status WriteAt(uint64_t offset, std::string_view data) override {
      if (faults_->fail_blob_writes) {
        ++faults_->injected_failures;
        return Status::IOError("injected failure of a blob write at offset " +
                               std::to_string(offset));
      }
      return base_->WriteAt(offset, data);
    }
    Status ReadAt(uint64_t offset, size_t n, char* out) const override {
      ++faults_->blob_reads;
      {
        std::unique_lock lock(faults_->mu);
        faults_->reads_released.wait(lock, [&] { return !faults_->hold_reads; });
      }
      return base_->ReadAt(offset, n, out);
    }
    Status Extents(std::vector<store::Extent>* out) const override { return base_->Extents(out); }

   private:
    const std::unique_ptr<store::ByteSink> base_;
    const std::shared_ptr<Faults> faults_;
  };

  const std::unique_ptr<store::Store> base_;
  const std::shared_ptr<Faults> faults_;
};

}  // namespace upfs::session::testing
