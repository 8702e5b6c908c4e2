// Engine: removing a committed asset (rmdir assets/NAME, the last step of
// rm -r assets/NAME; CheckAssetRemovalStep accepts the steps before it,
// which change nothing). One atomic,
// synced store write takes the asset's record, its entries, their id
// records and its commit notice out, and frees the bytes of its files,
// except those a handle has open: those are kept under a "removed" record
// (Batch::KeepRemoved) until their last reader closes, or until the next
// start, so that a crash at any point leaves the asset whole or gone, and
// no bytes without an owner (upfs fsck stays clean).
#include <mutex>

#include <spdlog/spdlog.h>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

Status Engine::Impl::RemoveAsset(std::string_view name) {
  if (options.worm)
    return Status::ReadOnly("assets are write-once and cannot be removed (-o worm)");
  WriterLock removal(asset_removal_mu);
  AssetRecord asset;
  Status got = store->GetAsset(name, &asset);
  if (got.IsNotFound()) return Status::NotFound("no asset " + Quote(name));
  UPFS_RETURN_IF_ERROR(got);
  std::vector<AssetEntry> entries;
  UPFS_RETURN_IF_ERROR(store->ListAssetEntries(name, &entries));
  Batch batch;
  std::vector<std::pair<uint64_t, Attr>> kept;
  uint64_t files = 0;
  // Several mounts: readers on other mounts are known from the store only
  // after the removal's write (which no AddReader can follow), so every
  // file is kept first, and those no live mount reads are freed after it.
  const bool shared = !store->MountId().empty();
  std::vector<uint64_t> file_ids;
  {
    // No handle opens or closes a committed file meanwhile (removal).
    MutexLock lock(handles_mu);
    for (AssetEntry& e : entries) {
      if (!e.is_dir) {
        ++files;
        file_ids.push_back(e.id);
        if (asset_readers.count(e.id)) {
          Attr attr = EntryAttrOf(e);
          attr.nlink = 0;
          kept.emplace_back(e.id, attr);
          batch.KeepRemoved(e.id);
        } else if (shared) {
          batch.KeepRemoved(e.id);
        } else {
          batch.DeleteBlobData(e.id);
        }
      }
      batch.Delete(std::move(e));
    }
  }
  batch.Delete(asset);
  const std::string where = "asset " + Quote(name);
  if (Status st = store->Apply(batch, /*sync=*/true); !st.ok()) {
    spdlog::error("{}: removal failed, the asset stays whole: {}", where, st.ToString());
    return st.WithContext("removing " + where);
  }
  {
    MutexLock lock(handles_mu);
    for (auto& [id, attr] : kept) {
      removed_waiting.insert(id);
      removed_attrs.emplace(id, attr);
    }
  }
  size_t elsewhere = 0;
  if (shared) {
    // This mount's records of files it read before and no longer reads go
    // first, or they would keep those files until its next sweep.
    MutexLock records(reader_records_mu);
    std::vector<uint64_t> idle;
    for (uint64_t id : file_ids) {
      if (idle_reader_records.count(id)) idle.push_back(id);
    }
    if (Status st = store->DropReaders(idle); !st.ok()) {
      spdlog::warn("{}: taking back this mount's records of {} files it read failed: {}", where,
                   idle.size(), st.ToString());
    } else {
      for (uint64_t id : idle) idle_reader_records.erase(id);
    }
    std::vector<uint64_t> unread;
    if (Status st = store->Unread(file_ids, &unread); !st.ok()) {
      // The "removed" records stay: a sweep or the next start frees them.
      spdlog::warn("{}: listing the readers of its files failed: {}", where, st.ToString());
    } else {
      FreeRemoved(unread);
      elsewhere = file_ids.size() - unread.size() - kept.size();
    }
  }
  --asset_count;
  assets_dir_ns = Now();
  spdlog::info("{} removed: {} files, {} bytes{}{}", where, files, asset.bytes,
               kept.empty() ? std::string()
                            : "; the bytes of " + std::to_string(kept.size()) +
                                  " files open for reading are freed when they are closed",
               elsewhere == 0 ? std::string()
                              : "; the bytes of " + std::to_string(elsewhere) +
                                    " files other mounts read are freed when their readers close");
  return Status::OK();
}

Status Engine::Impl::AssetRemovalRefused() const {
  if (options.worm) {
    return Status::ReadOnly("assets are write-once and cannot be removed (-o worm)");
  }
  return Status::ReadOnly(
      "an asset's files cannot be removed one by one: rm -r assets/NAME or rmdir assets/NAME "
      "removes the whole asset");
}

Status Engine::CheckAssetRemovalStep(uint64_t parent, std::string_view name, bool is_dir,
                                     Caller caller) {
  Impl& m = *impl_;
  if (m.options.worm) return m.AssetRemovalRefused();
  Result<AssetLocation> loc = m.Locate(parent);
  if (loc.status().IsNotFound()) return m.AssetRemovalRefused();
  UPFS_RETURN_IF_ERROR(loc.status());
  AssetRecord asset;
  UPFS_RETURN_IF_ERROR(m.store->GetAsset(loc->asset, &asset));
  if (caller.uid != 0 && caller.uid != asset.uid) {
    return Status::NotPermitted(fmt::format(
        "only the owner of asset {} (uid {}) or root may remove it", Quote(loc->asset), asset.uid));
  }
  AssetEntry e;
  Status st = m.store->GetAssetEntry(loc->asset, loc->ChildDir(), name, &e);
  if (st.IsNotFound())
    return Status::NotFound("no " + Quote(name) + " in asset " + Quote(loc->asset));
  UPFS_RETURN_IF_ERROR(st);
  if (is_dir && !e.is_dir) return Status::NotDirectory(Quote(name) + " is not a directory");
  if (!is_dir && e.is_dir) return Status::IsDirectory(Quote(name) + " is a directory");
  return Status::OK();
}

bool Engine::Impl::LastReaderOfSharedFile(uint64_t blob, bool removed_here) {
  if (!removed_here) {
    // Kept until the next sweep: a file another mount removed meanwhile
    // is freed by a sweep after that (they free every removed file no
    // live mount reads).
    idle_reader_records.insert(blob);
    return false;
  }
  if (Status st = store->DropReaders({blob}); !st.ok()) {
    // The record stays until this mount stops: the bytes wait until then.
    spdlog::warn("file id {}: taking back this mount's reader record failed: {}", blob,
                 st.ToString());
    return false;
  }
  std::vector<uint64_t> unread;
  if (Status st = store->Unread({blob}, &unread); !st.ok()) {
    spdlog::warn("file id {}: listing its readers failed (freed by a later sweep): {}", blob,
                 st.ToString());
    return false;
  }
  return !unread.empty();  // else the last reader elsewhere frees it
}

void Engine::Impl::FreeRemoved(const std::vector<uint64_t>& blobs) {
  if (blobs.empty()) return;
  Batch batch;
  for (uint64_t blob : blobs) {
    batch.DeleteBlobData(blob);
    batch.ForgetRemoved(blob);
  }
  if (Status st = store->Apply(batch, /*sync=*/false); !st.ok()) {
    // The "removed" records stay: the next start frees them.
    spdlog::warn(
        "freeing the bytes of {} file(s) of removed assets failed (retried at the next start): {}",
        blobs.size(), st.ToString());
  }
}

void Engine::Impl::DropIdleReaderRecords() {
  MutexLock records(reader_records_mu);
  if (idle_reader_records.empty()) return;
  std::vector<uint64_t> blobs(idle_reader_records.begin(), idle_reader_records.end());
  if (Status st = store->DropReaders(blobs); !st.ok()) {
    spdlog::warn("taking back this mount's records of {} committed files it read failed: {}",
                 blobs.size(), st.ToString());
    return;
  }
  idle_reader_records.clear();
}

}  // namespace upfs::session
