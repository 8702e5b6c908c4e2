// Engine::Open: the engine over a store, with every open session (nodes,
// extents, lengths) recovered from it.
#include "session/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "session/engine_impl.h"

namespace upfs::session {

Result<std::unique_ptr<Engine>> Engine::Open(std::unique_ptr<store::Store> store, Options options) {
  auto impl = std::make_unique<Impl>(std::move(store), std::move(options));
  std::vector<SessionRecord> records;
  UPFS_RETURN_IF_ERROR(impl->store->ListSessions(&records));
  int64_t now = impl->Now();
  for (SessionRecord& rec : records) {
    auto s = std::make_shared<Session>();
    s->record = std::move(rec);
    s->last_activity_ns = now;  // the idle timer restarts at mount
    std::vector<NodeRecord> nodes;
    UPFS_RETURN_IF_ERROR(impl->store->ListNodes(s->id(), &nodes));
    uint64_t received_total = 0;
    for (NodeRecord& nr : nodes) {
      Node n;
      n.id = nr.id;
      n.parent = nr.parent;
      n.name = std::move(nr.name);
      n.is_dir = nr.is_dir;
      n.mode = nr.mode;
      n.uid = nr.uid;
      n.gid = nr.gid;
      n.atime_ns = nr.atime_ns;
      n.dir_mtime_ns = nr.mtime_ns;
      n.dir_ctime_ns = nr.ctime_ns;
      n.xattrs = std::move(nr.xattrs);
      if (!n.is_dir) {
        n.file = std::make_shared<FileState>(impl->store.get(), n.id);
        Result<ExtentMap> stored = n.file->StoredRanges();
        if (!stored.ok()) return stored.status().WithContext("recovering session " + Quote(s->record.name));
        n.file->received = std::move(*stored);
        n.file->length = std::max(nr.length, n.file->received.End());
        n.file->mtime_ns = nr.mtime_ns;
        n.file->ctime_ns = nr.ctime_ns;
        received_total += n.file->received.BytesReceived();
        // The hash is rebuilt from the store when finish needs it.
        if (n.file->length.load() > 0) n.file->hash.Invalidate();
      }
      s->nodes.emplace(n.id, std::move(n));
    }
    for (auto& [id, n] : s->nodes) {
      auto dir = s->DirChildren(n.parent);
      if (!dir.ok()) {
        spdlog::error("recovering session {}: node {} ({}) has no parent {}; left out", Quote(s->record.name), id,
                      Quote(n.name), n.parent);
        continue;
      }
      (*dir)->emplace(n.name, id);
      if (n.is_dir) ++s->SubdirsOf(n.parent);
    }
    for (const auto& [id, n] : s->nodes) impl->IndexAdd(id, s);
    impl->IndexAdd(s->id(), s);
    impl->IndexAdd(s->id() + kFinishOffset, s);
    impl->IndexAdd(s->id() + kStatusOffset, s);
    spdlog::info("recovered session {}: {} nodes, {} bytes received", Quote(s->record.name), s->nodes.size(),
                 received_total);
    impl->sessions.emplace(s->record.name, std::move(s));
  }
  std::vector<AssetRecord> assets;
  UPFS_RETURN_IF_ERROR(impl->store->ListAssets(&assets));
  impl->asset_count = assets.size();
  impl->sessions_dir_ns = impl->assets_dir_ns = impl->mount_time_ns;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

}  // namespace upfs::session
