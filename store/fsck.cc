#include "store/fsck.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "store/records.h"

namespace upfs::store {
namespace {

using Kind = FsckProblemKind;

// A window of extent records stops at this many bytes of values (inline
// chunks hold up to kInlineChunkEnd bytes each).
constexpr size_t kWindowBytes = size_t{16} << 20;

// The largest key the unknown-key scan looks below.
const std::string kKeySpaceEnd(64, '\xff');

std::string RangeText(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// An entry's path inside its asset, as AssetEntry::Path() builds it.
std::string JoinPath(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : std::string(dir) + "/" + std::string(name);
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Who owns a blob, and what the check expects of it.
struct Owner {
  uint64_t id = 0;
  // kRemoved: a file of a removed asset whose bytes wait for its readers
  // (an "R" record); its bytes are not checked.
  enum class Side { kCommitted, kSession, kCommittedUnknown, kRemoved } side = Side::kCommitted;
  std::string asset;    // kCommitted, kCommittedUnknown
  std::string session;  // kSession
  std::string path;
  uint64_t length = 0;  // kCommitted
  std::string sha256;   // kCommitted
};

// An id the committed index hands out, for matching against "I" records.
struct CommittedId {
  uint64_t id = 0;
  AssetLocation location;  // dir and name empty for an asset root
};

// One extent record ("@") of the current window.
struct ExtentRecord {
  std::string key;
  std::string value;
};

class Checker {
 public:
  Checker(Kv& kv, BlobFiles& blobs, const FsckOptions& options)
      : kv_(kv), blobs_(blobs), options_(options) {}

  Result<FsckReport> Run() {
    CheckLayout();
    CheckAssets();
    CheckEntries();
    CheckIds();
    CheckNotices();
    CheckRemoved();
    CheckReaders();
    CheckQuotaGrants();
    CheckSessionsAndNodes();
    IndexOwners();
    LoadPacks();
    CheckData();
    CheckNextId();
    if (options_.remove_orphans) UPFS_RETURN_IF_ERROR(RemoveOrphans());
    return std::move(report_);
  }

 private:
  // ---- reporting ----

  FsckProblem& Add(Kind kind, std::string message) {
    FsckProblem p;
    p.kind = kind;
    p.message = std::move(message);
    report_.problems.push_back(std::move(p));
    return report_.problems.back();
  }

  FsckProblem& AddFor(Kind kind, const Owner* owner, uint64_t blob, std::optional<uint64_t> offset,
                      std::string message) {
    FsckProblem& p = Add(kind, std::move(message));
    p.blob = blob;
    p.offset = offset;
    if (owner) {
      p.asset = owner->asset;
      p.session = owner->session;
      p.path = owner->path;
    }
    return p;
  }

  FsckProblem& Undecodable(std::string_view key, std::string message) {
    FsckProblem& p = Add(Kind::kUndecodable, std::move(message));
    p.key = EscapeBytes(key);
    return p;
  }

  // A scan that failed leaves the check partial; it is a problem itself.
  void ScanFailed(const Status& s, std::string_view what) {
    if (s.ok()) return;
    Add(Kind::kReadError, "scan of " + std::string(what) + " failed: " + s.ToString());
    scan_failed_ = true;
  }

  // ---- the index ----

  // Keys outside the layout of store/records.h: under none of its tags
  // (keys::kTags), or under the tag of a single key ("V", "N").
  void CheckLayout() {
    std::string begin;
    auto scan_gap = [&](const std::string& from, const std::string& to) {
      ScanFailed(kv_.Scan(from, to,
                          [&](std::string_view k, std::string_view) {
                            Undecodable(k, "key outside the store's layout");
                            return true;
                          }),
                 "unknown keys");
    };
    for (char tag : keys::kTags) {
      std::string t(1, tag);
      scan_gap(begin, t);
      begin = keys::PrefixEnd(t);
    }
    scan_gap(begin, kKeySpaceEnd);
    // "V" and "N" are single keys: anything longer under their tag is stray.
    for (std::string_view single : {keys::kFormatKey, keys::kNextIdKey}) {
      std::string from(single);
      from.push_back('\0');
      scan_gap(from, keys::PrefixEnd(single));
    }
    std::string next;
    Status s = kv_.Get(keys::kNextIdKey, &next);
    if (s.ok() && next.size() == 8) {
      next_id_ = keys::ReadBigEndian64(next);
    } else if (s.ok() || s.IsNotFound()) {
      Undecodable(keys::kNextIdKey,
                  s.ok() ? "next-id record is not 8 bytes" : "next-id record is missing");
    } else {
      ScanFailed(s, "the next-id record");
    }
  }

  struct AssetTally {
    AssetRecord record;
    uint64_t files = 0;
    uint64_t bytes = 0;
    bool entries_undecodable = false;
  };

  void CheckAssets() {
    std::string prefix = keys::AssetPrefix();
    ScanFailed(kv_.Scan(prefix, keys::PrefixEnd(prefix),
                        [&](std::string_view k, std::string_view v) {
                          AssetRecord r;
                          Status s = DecodeAsset(v, &r);
                          std::string name(keys::NameOf(k));
                          if (!s.ok()) {
                            Undecodable(k, s.message()).asset = name;
                            index_incomplete_ = true;
                            undecodable_assets_.insert(name);
                            return true;
                          }
                          if (r.name != name) {
                            Add(Kind::kIndex, "asset record under the key of '" +
                                                  EscapeBytes(name) + "' names '" +
                                                  EscapeBytes(r.name) + "'")
                                .asset = name;
                          }
                          ++report_.assets;
                          max_id_ = std::max(max_id_, r.root_id + kIdsPerSession - 1);
                          committed_ids_.push_back({r.root_id, {name, "", ""}});
                          assets_.emplace(name, AssetTally{std::move(r)});
                          return true;
                        }),
               "asset records");
  }

  void CheckEntries() {
    std::set<std::pair<std::string, std::string>> dirs;  // (asset, path) of directory entries
    // Entries below the top level, for the parent check once all are read.
    struct Child {
      std::string asset, dir, path;
    };
    std::vector<Child> with_parent;
    std::string prefix = keys::EntryPrefix();
    ScanFailed(kv_.Scan(prefix, keys::PrefixEnd(prefix),
                        [&](std::string_view k, std::string_view v) {
                          AssetEntry e;
                          Status s = DecodeEntry(v, &e);
                          if (!s.ok()) {
                            // The key still says where the entry was.
                            FsckProblem& p = Add(Kind::kUndecodable, "asset entry: " + s.message());
                            p.key = EscapeBytes(k);
                            AssetLocation where;
                            if (keys::ParseEntry(k, &where)) {
                              p.asset = where.asset;
                              p.path = JoinPath(where.dir, where.name);
                              auto it = assets_.find(where.asset);
                              if (it != assets_.end()) it->second.entries_undecodable = true;
                            }
                            undecodable_entries_.insert(std::string(k));
                            index_incomplete_ = true;
                            return true;
                          }
                          const std::string path = e.Path();
                          if (keys::Entry(e.asset, e.dir, e.name) != k) {
                            FsckProblem& p =
                                Add(Kind::kIndex, "entry record for '" + EscapeBytes(path) +
                                                      "' of asset '" + EscapeBytes(e.asset) +
                                                      "' is stored under another key");
                            p.key = EscapeBytes(k);
                            p.asset = e.asset;
                            p.path = path;
                          }
                          auto asset = assets_.find(e.asset);
                          if (asset == assets_.end()) {
                            if (!undecodable_assets_.count(e.asset)) {
                              FsckProblem& p =
                                  Add(Kind::kIndex, "entry of an asset that has no asset record");
                              p.asset = e.asset;
                              p.path = path;
                            }
                          }
                          max_id_ = std::max(max_id_, e.id);
                          committed_ids_.push_back({e.id, {e.asset, e.dir, e.name}});
                          if (e.is_dir) {
                            dirs.emplace(e.asset, path);
                          } else {
                            ++report_.asset_files;
                            if (asset != assets_.end()) {
                              ++asset->second.files;
                              asset->second.bytes += e.length;
                            }
                            if (e.sha256.size() != 64 || !IsLowerHex(e.sha256)) {
                              FsckProblem& p =
                                  Add(Kind::kIndex, "recorded sha256 '" + EscapeBytes(e.sha256) +
                                                        "' is not 64 lowercase hex digits");
                              p.asset = e.asset;
                              p.path = path;
                              p.blob = e.id;
                            }
                            owners_.push_back({e.id, Owner::Side::kCommitted, e.asset, "", path,
                                               e.length, e.sha256});
                          }
                          if (!e.dir.empty()) with_parent.push_back({e.asset, e.dir, path});
                          return true;
                        }),
               "asset entries");
    for (const Child& c : with_parent) {
      if (dirs.count({c.asset, c.dir})) continue;
      // A parent that is there but undecodable was reported already.
      size_t slash = c.dir.rfind('/');
      std::string parent_dir = slash == std::string::npos ? "" : c.dir.substr(0, slash);
      std::string parent_name = slash == std::string::npos ? c.dir : c.dir.substr(slash + 1);
      if (undecodable_entries_.count(keys::Entry(c.asset, parent_dir, parent_name))) continue;
      FsckProblem& p =
          Add(Kind::kIndex, "parent directory '" + EscapeBytes(c.dir) + "' has no entry");
      p.asset = c.asset;
      p.path = c.path;
    }
    for (const auto& [name, tally] : assets_) {
      if (tally.entries_undecodable) continue;
      if (tally.files != tally.record.files || tally.bytes != tally.record.bytes) {
        Add(Kind::kIndex, "asset record counts " + std::to_string(tally.record.files) + " files, " +
                              std::to_string(tally.record.bytes) + " bytes; its entries hold " +
                              std::to_string(tally.files) + " files, " +
                              std::to_string(tally.bytes) + " bytes")
            .asset = name;
      }
    }
  }

  static std::string LocationText(const AssetLocation& l) {
    if (l.is_root()) return "the root of asset '" + EscapeBytes(l.asset) + "'";
    return "'" + EscapeBytes(JoinPath(l.dir, l.name)) + "' of asset '" + EscapeBytes(l.asset) + "'";
  }

  // Commit notices (post_commit's outbox): each names a committed asset
  // and holds nothing, or (several mounts) the id of the mount that
  // delivers it.
  void CheckNotices() {
    std::string prefix = keys::NoticePrefix();
    ScanFailed(
        kv_.Scan(prefix, keys::PrefixEnd(prefix),
                 [&](std::string_view k, std::string_view v) {
                   std::string name(keys::NameOf(k));
                   if (!v.empty() && !keys::IsMountId(v)) {
                     Undecodable(k, "commit notice holds neither nothing nor a mount's id").asset =
                         name;
                   } else if (!assets_.count(name) && !undecodable_assets_.count(name)) {
                     Add(Kind::kIndex,
                         "commit notice for '" + EscapeBytes(name) + "', which is not an asset")
                         .asset = name;
                   }
                   return true;
                 }),
        "commit notices");
  }

  // Files of removed assets waiting for their readers: their blobs are
  // owned until freed (at the latest by the next start).
  void CheckRemoved() {
    std::string prefix = keys::RemovedPrefix();
    ScanFailed(
        kv_.Scan(prefix, keys::PrefixEnd(prefix),
                 [&](std::string_view k, std::string_view v) {
                   uint64_t blob = 0;
                   if (!keys::ParseNumbered(k, &blob) || !(v.empty() || keys::IsMountId(v))) {
                     Undecodable(k,
                                 "removed-file record is not an 8-byte id with an empty "
                                 "value or a mount's id");
                     return true;
                   }
                   owners_.push_back({blob, Owner::Side::kRemoved, "", "", "", 0, ""});
                   return true;
                 }),
        "removed-file records");
  }

  // Mounts' records of their readers of committed files (several mounts):
  // well-formed, with an empty value. They own nothing: a file's bytes
  // are owned by its entry or its "removed" record.
  void CheckReaders() {
    std::string prefix = keys::ReaderPrefix();
    ScanFailed(kv_.Scan(prefix, keys::PrefixEnd(prefix),
                        [&](std::string_view k, std::string_view v) {
                          uint64_t blob = 0;
                          std::string_view mount;
                          if (!keys::ParseReader(k, &blob, &mount) || !v.empty())
                            Undecodable(k,
                                        "reader record is not an 8-byte id and a mount's id "
                                        "with an empty value");
                          return true;
                        }),
               "reader records");
  }

  // The mounts' grants of the per-user limits (several mounts): one
  // record per uid (a 32-bit number), each grant naming a mount. They own
  // nothing; a wrong one can only make the limits refuse early or late.
  void CheckQuotaGrants() {
    std::string prefix = keys::QuotaGrantsPrefix();
    ScanFailed(kv_.Scan(prefix, keys::PrefixEnd(prefix),
                        [&](std::string_view k, std::string_view v) {
                          uint64_t uid = 0;
                          std::vector<MountGrant> grants;
                          if (!keys::ParseNumbered(k, &uid) || uid > UINT32_MAX) {
                            Undecodable(k, "quota grant record is not a uid's");
                          } else if (Status st = DecodeQuotaGrants(v, &grants); !st.ok()) {
                            Undecodable(k, st.message());
                          }
                          return true;
                        }),
               "quota grant records");
  }

  // Merges the "I" records (sorted by id) with the ids the entries and
  // asset records hand out.
  void CheckIds() {
    std::sort(committed_ids_.begin(), committed_ids_.end(),
              [](const CommittedId& a, const CommittedId& b) { return a.id < b.id; });
    for (size_t i = 1; i < committed_ids_.size(); ++i) {
      if (committed_ids_[i].id == committed_ids_[i - 1].id) {
        FsckProblem& p =
            Add(Kind::kIndex, "id " + std::to_string(committed_ids_[i].id) + " is used by " +
                                  LocationText(committed_ids_[i - 1].location) + " and by " +
                                  LocationText(committed_ids_[i].location));
        p.asset = committed_ids_[i].location.asset;
        p.blob = committed_ids_[i].id;
      }
    }
    size_t next = 0;
    // Reports the ids below `id` (all that are left, without one) as
    // having no id record.
    auto missing_up_to = [&](std::optional<uint64_t> id) {
      for (; next < committed_ids_.size() && (!id || committed_ids_[next].id < *id); ++next) {
        const CommittedId& c = committed_ids_[next];
        FsckProblem& p = Add(Kind::kMissingId, LocationText(c.location) + " (id " +
                                                   std::to_string(c.id) + ") has no id record");
        p.asset = c.location.asset;
        if (!c.location.is_root()) p.path = JoinPath(c.location.dir, c.location.name);
        p.blob = c.id;
      }
    };
    std::string prefix = keys::IdPrefix();
    ScanFailed(
        kv_.Scan(prefix, keys::PrefixEnd(prefix),
                 [&](std::string_view k, std::string_view v) {
                   uint64_t id = 0;
                   if (!keys::ParseNumbered(k, &id)) {
                     Undecodable(k, "id record key is not 9 bytes");
                     return true;
                   }
                   missing_up_to(id);
                   bool known = next < committed_ids_.size() && committed_ids_[next].id == id;
                   AssetLocation l;
                   Status s = DecodeLocation(v, &l);
                   if (!s.ok()) {
                     Undecodable(k, "id record of id " + std::to_string(id) + ": " + s.message());
                   } else if (known) {
                     const AssetLocation& want = committed_ids_[next].location;
                     if (l.asset != want.asset || l.dir != want.dir || l.name != want.name) {
                       FsckProblem& p =
                           Add(Kind::kIndex, "id record of id " + std::to_string(id) + " names " +
                                                 LocationText(l) + ", but id " +
                                                 std::to_string(id) + " is " + LocationText(want));
                       p.asset = want.asset;
                       p.blob = id;
                     }
                   } else if (!l.is_root() &&
                              undecodable_entries_.count(keys::Entry(l.asset, l.dir, l.name))) {
                     // The entry is there but garbled (reported); its
                     // id record still says who owns the blob.
                     owners_.push_back({id, Owner::Side::kCommittedUnknown, l.asset, "",
                                        JoinPath(l.dir, l.name), 0, ""});
                     max_id_ = std::max(max_id_, id);
                   } else {
                     FsckProblem& p = Add(Kind::kDanglingId,
                                          "id record of id " + std::to_string(id) + " names " +
                                              LocationText(l) + ", which does not exist");
                     p.asset = l.asset;
                     p.blob = id;
                   }
                   while (next < committed_ids_.size() && committed_ids_[next].id == id) ++next;
                   return true;
                 }),
        "id records");
    missing_up_to(std::nullopt);
  }

  struct NodeInfo {
    uint64_t parent = 0;
    std::string name;
    bool is_dir = false;
  };

  void CheckSessionsAndNodes() {
    std::map<uint64_t, std::string> sessions;  // id -> name
    std::string prefix = keys::SessionPrefix();
    ScanFailed(
        kv_.Scan(
            prefix, keys::PrefixEnd(prefix),
            [&](std::string_view k, std::string_view v) {
              SessionRecord r;
              Status s = DecodeSession(v, &r);
              std::string name(keys::NameOf(k));
              if (!s.ok()) {
                Undecodable(k, s.message()).session = name;
                index_incomplete_ = true;
                return true;
              }
              if (r.name != name) {
                Add(Kind::kIndex, "session record under the key of '" + EscapeBytes(name) +
                                      "' names '" + EscapeBytes(r.name) + "'")
                    .session = name;
              }
              if (!sessions.emplace(r.id, name).second) {
                Add(Kind::kIndex, "session id " + std::to_string(r.id) + " is used by '" +
                                      EscapeBytes(sessions[r.id]) + "' too")
                    .session = name;
              }
              if (assets_.count(name)) {
                Add(Kind::kIndex, "an open session and a committed asset share the name").session =
                    name;
              }
              max_id_ = std::max(max_id_, r.id + kIdsPerSession - 1);
              ++report_.sessions;
              return true;
            }),
        "session records");

    // Nodes, grouped by session (keys sort by session id, then node id).
    std::map<uint64_t, std::map<uint64_t, NodeInfo>> nodes;
    prefix = keys::NodePrefix();
    ScanFailed(kv_.Scan(prefix, keys::PrefixEnd(prefix),
                        [&](std::string_view k, std::string_view v) {
                          uint64_t session_id = 0, node_id = 0;
                          if (!keys::ParsePair(k, &session_id, &node_id)) {
                            Undecodable(k, "node record key is not 17 bytes");
                            return true;
                          }
                          auto session = sessions.find(session_id);
                          NodeRecord r;
                          Status s = DecodeNode(v, &r);
                          if (!s.ok()) {
                            FsckProblem& p = Add(Kind::kUndecodable, s.message());
                            p.key = EscapeBytes(k);
                            p.blob = node_id;
                            if (session != sessions.end()) p.session = session->second;
                            index_incomplete_ = true;
                            return true;
                          }
                          max_id_ = std::max(max_id_, node_id);
                          if (session == sessions.end()) {
                            FsckProblem& p =
                                Add(Kind::kOrphanNode,
                                    std::string(r.is_dir ? "directory" : "file") + " '" +
                                        EscapeBytes(r.name) + "' of session id " +
                                        std::to_string(session_id) + ", which does not exist");
                            p.key = EscapeBytes(k);
                            p.blob = node_id;
                            orphan_node_keys_.emplace_back(k);
                            orphan_node_problems_.push_back(report_.problems.size() - 1);
                            return true;
                          }
                          if (r.id != node_id) {
                            FsckProblem& p = Add(Kind::kIndex,
                                                 "node record under id " + std::to_string(node_id) +
                                                     " says id " + std::to_string(r.id));
                            p.session = session->second;
                            p.blob = node_id;
                          }
                          ++report_.session_nodes;
                          nodes[session_id][node_id] = {r.parent, std::move(r.name), r.is_dir};
                          return true;
                        }),
               "node records");

    for (const auto& [session_id, table] : nodes) {
      const std::string& session = sessions[session_id];
      for (const auto& [id, node] : table) {
        std::string path;
        std::string broken;
        if (!PathOf(session_id, table, id, &path, &broken)) {
          FsckProblem& p = Add(Kind::kIndex, broken);
          p.session = session;
          p.path = path;
          p.blob = id;
        }
        if (!node.is_dir) owners_.push_back({id, Owner::Side::kSession, "", session, path, 0, ""});
      }
    }
  }

  // The path of node `id` in its session. False (with `broken` saying why
  // and `path` as far as it resolved) when a parent is missing or the
  // parents loop.
  static bool PathOf(uint64_t session_id, const std::map<uint64_t, NodeInfo>& table, uint64_t id,
                     std::string* path, std::string* broken) {
    std::vector<const std::string*> names;
    uint64_t at = id;
    for (size_t steps = 0; at != session_id; ++steps) {
      auto it = table.find(at);
      if (it == table.end() || steps > table.size()) {
        *broken = it == table.end()
                      ? "parent " + std::to_string(at) + " of this node does not exist"
                      : "the node's parents form a loop";
        break;
      }
      if (it->second.is_dir == false && at != id) {
        *broken = "parent " + std::to_string(at) + " is a file";
        break;
      }
      names.push_back(&it->second.name);
      at = it->second.parent;
    }
    path->clear();
    for (auto n = names.rbegin(); n != names.rend(); ++n) {
      if (!path->empty()) path->push_back('/');
      path->append(**n);
    }
    return broken->empty();
  }

  void IndexOwners() {
    std::stable_sort(owners_.begin(), owners_.end(),
                     [](const Owner& a, const Owner& b) { return a.id < b.id; });
    for (size_t i = 1; i < owners_.size(); ++i) {
      if (owners_[i].id != owners_[i - 1].id) continue;
      // Two committed entries sharing an id were reported by CheckIds.
      auto exclusive = [](const Owner& o) {
        return o.side == Owner::Side::kSession || o.side == Owner::Side::kRemoved;
      };
      if (!exclusive(owners_[i]) && !exclusive(owners_[i - 1])) continue;
      FsckProblem& p =
          Add(Kind::kIndex, "blob " + std::to_string(owners_[i].id) + " is claimed by " +
                                Describe(owners_[i - 1]) + " and by " + Describe(owners_[i]));
      p.blob = owners_[i].id;
      p.asset = owners_[i].asset;
      p.session = owners_[i].session;
      p.path = owners_[i].path;
    }
  }

  static std::string Describe(const Owner& o) {
    if (o.side == Owner::Side::kSession) {
      return "file '" + EscapeBytes(o.path) + "' of session '" + EscapeBytes(o.session) + "'";
    }
    if (o.side == Owner::Side::kRemoved) return "a file of a removed asset, kept for its readers";
    return "file '" + EscapeBytes(o.path) + "' of asset '" + EscapeBytes(o.asset) + "'";
  }

  const Owner* OwnerOf(uint64_t blob) const {
    auto it = std::lower_bound(owners_.begin(), owners_.end(), blob,
                               [](const Owner& o, uint64_t id) { return o.id < id; });
    return it != owners_.end() && it->id == blob ? &*it : nullptr;
  }

  // ---- the data ----

  // What the check knows of the blob whose chunks are streaming past.
  struct BlobState {
    uint64_t blob = 0;
    const Owner* owner = nullptr;        // null: an orphan
    uint64_t covered_end = 0;            // end of the furthest extent so far
    std::optional<uint64_t> end_record;  // the bound in its end record, once seen
    uint64_t hashed_end = 0;             // bytes [0, hashed_end) went into the hash
    bool hash_broken = false;            // a chunk came out of order or is missing
    bool explained = false;              // a problem already says why
    bool beyond_reported = false;
    std::unique_ptr<FsckHasher> hasher;
    // Orphans: what removal would free.
    uint64_t chunks = 0;
    uint64_t bytes = 0;
    uint64_t first_offset = 0;
    uint64_t end = 0;  // of the last extent
  };

  // Streams the extent records ("@") in key order, in windows of at most
  // `window_records`, reading each chunk's bytes from the blob files.
  void CheckData() {
    const size_t window = std::max<size_t>(1, options_.window_records);
    std::string lo = keys::ExtentPrefix();  // key where this window starts
    for (;;) {
      std::vector<ExtentRecord> extents;
      std::optional<std::string> hi;  // key where the next window starts
      size_t window_bytes = 0;        // inline chunks' values hold their bytes
      Status xs = kv_.Scan(lo, keys::PrefixEnd(keys::ExtentPrefix()),
                           [&](std::string_view k, std::string_view v) {
                             if (extents.size() == window || window_bytes >= kWindowBytes) {
                               hi = std::string(k);
                               return false;
                             }
                             extents.push_back({std::string(k), std::string(v)});
                             window_bytes += v.size();
                             return true;
                           });
      ScanFailed(xs, "extent records");
      for (const ExtentRecord& e : extents) OnRecord(e.key, e.value);
      if (!hi) break;
      lo = std::move(*hi);
    }
    FinishBlob();
    FinishUnseenOwners(UINT64_MAX);
    CheckUnrecordedBlobs();
  }

  // One extent record, in key order: a chunk's extent record, or after a
  // blob's chunks its end record.
  void OnRecord(std::string_view key, const std::string& extent) {
    if (keys::IsBlobEnd(key)) {
      OnBlobEnd(keys::BlobOf(key), extent);
      return;
    }
    uint64_t blob = 0, offset = 0;
    if (!keys::ParsePair(key, &blob, &offset)) {
      Undecodable(key, "extent key is not 17 bytes");
      return;
    }
    BlobState& b = BlobAt(blob);
    ++report_.chunks;

    uint64_t length = 0;
    uint64_t extent_checksum = 0;
    std::optional<std::string_view> inline_bytes;
    std::optional<PackedAt> packed;
    if (!DecodeExtentValue(extent, &length, &extent_checksum, &inline_bytes, &packed)) {
      FsckProblem& p = AddFor(Kind::kUndecodable, b.owner, blob, offset,
                              "extent record is neither " + std::to_string(kExtentValueSize) +
                                  " bytes, nor that and the chunk's bytes, nor a packed chunk's");
      p.key = EscapeBytes(keys::Extent(blob, offset));
      b.explained = true;
      b.hash_broken = true;
      index_incomplete_ = true;
      return;
    }

    if (packed) used_packs_.insert(packed->pack);
    if (!b.owner) {
      if (b.chunks == 0) b.first_offset = offset;
      ++b.chunks;
      b.bytes += length;
      b.end = std::max(b.end, offset + std::min(length, kMaxBlobLength));
      return;
    }

    // The chunk's bytes, checked against the record.
    std::string chunk;
    bool chunk_good = false;
    const std::string range = RangeText(offset, offset + length);
    if (length == 0 || length > kMaxChunkBytes || offset >= kMaxBlobLength) {
      AddFor(Kind::kExtentLength, b.owner, blob, offset,
             "extent record says " + std::to_string(length) + " bytes, outside (0, " +
                 std::to_string(kMaxChunkBytes) + "] or beyond the largest file");
      length = 0;
      b.explained = true;
      b.hash_broken = true;
    } else {
      chunk.resize(length);
      size_t present = 0;
      Status rs;
      if (inline_bytes) {
        chunk = *inline_bytes;
        present = length;
      } else if (packed) {
        if (packs_.count(packed->pack) == 0) {
          AddFor(Kind::kUndecodable, b.owner, blob, offset,
                 "chunk " + range + " is in pack " + std::to_string(packed->pack) +
                     ", which has no pack record");
        }
        rs = blobs_.Read(packed->pack, packed->offset, length, chunk.data(), &present);
      } else {
        rs = blobs_.Read(blob, offset, length, chunk.data(), &present);
      }
      if (!rs.ok()) {
        AddFor(Kind::kUnreadableChunk, b.owner, blob, offset,
               "chunk " + range + " is unreadable: " + rs.ToString());
        scan_failed_ = true;
      } else if (present == 0) {
        AddFor(Kind::kExtentWithoutChunk, b.owner, blob, offset,
               "chunk " + range + " is missing: the blob file holds none of its bytes");
      } else if (present < length) {
        AddFor(Kind::kExtentLength, b.owner, blob, offset,
               "extent record says " + std::to_string(length) + " bytes, the blob file holds " +
                   std::to_string(present));
      } else if (ChunkChecksum(chunk) != extent_checksum) {
        // Reads fail with EIO on this chunk; say which one.
        AddFor(Kind::kChunkChecksum, b.owner, blob, offset,
               "chunk " + range + " does not match the checksum in its extent record");
      } else {
        chunk_good = true;
      }
      if (!chunk_good) {
        b.explained = true;
        b.hash_broken = true;
      }
    }

    // Coverage: extents sorted by offset must neither overlap nor leave a
    // hole; committed files must also end exactly at their length.
    const bool committed = b.owner->side == Owner::Side::kCommitted;
    if (offset < b.covered_end) {
      AddFor(Kind::kOverlappingExtents, b.owner, blob, offset,
             "chunk " + range + " overlaps bytes up to " + std::to_string(b.covered_end));
      b.explained = true;
      b.hash_broken = true;
    } else if (committed && offset > b.covered_end && b.covered_end < b.owner->length) {
      const uint64_t end = std::min(offset, b.owner->length);
      AddFor(Kind::kMissingExtent, b.owner, blob, b.covered_end,
             "no extent for bytes " + RangeText(b.covered_end, end) + " of " +
                 std::to_string(b.owner->length));
      b.explained = true;
      b.hash_broken = true;
    }
    b.covered_end = std::max(b.covered_end, offset + length);
    if (committed && offset + length > b.owner->length && length > 0 && !b.beyond_reported) {
      const uint64_t from = std::max(offset, b.owner->length);
      AddFor(Kind::kBeyondLength, b.owner, blob, from,
             "bytes stored from offset " + std::to_string(from) + " are beyond the file's length " +
                 std::to_string(b.owner->length));
      b.beyond_reported = true;
      b.explained = true;
    }

    // Content: only bytes [0, length) count, in order.
    if (committed && chunk_good && !b.hash_broken && offset < b.owner->length) {
      if (offset != b.hashed_end) {
        b.hash_broken = true;
      } else {
        const uint64_t n = std::min<uint64_t>(chunk.size(), b.owner->length - offset);
        b.hasher->Update(std::string_view(chunk).substr(0, n));
        b.hashed_end += n;
        report_.bytes_hashed += n;
      }
    }
  }

  // The state of `blob`, whose records stream past now.
  BlobState& BlobAt(uint64_t blob) {
    if (!current_ || current_->blob != blob) {
      FinishBlob();
      FinishUnseenOwners(blob);
      StartBlob(blob);
    }
    max_id_ = std::max(max_id_, blob);
    return *current_;
  }

  void OnBlobEnd(uint64_t blob, const std::string& value) {
    BlobState& b = BlobAt(blob);
    uint64_t bound = 0;
    if (!DecodeBlobEnd(value, &bound)) {
      AddFor(Kind::kUndecodable, b.owner, blob, std::nullopt, "end record is not 8 bytes").key =
          EscapeBytes(keys::BlobEnd(blob));
      bound = kMaxBlobLength;  // reported once
    }
    b.end_record = bound;
  }

  // The store finds a blob's chunks through its end record: without one it
  // sees none, and a write past the record's bound would not replace a
  // chunk that reaches beyond it.
  void CheckEndRecord(const BlobState& b) {
    if (b.covered_end == 0 || (b.end_record && *b.end_record >= b.covered_end)) return;
    const std::string reach = std::to_string(b.covered_end);
    AddFor(Kind::kIndex, b.owner, b.blob, std::nullopt,
           b.end_record ? "end record says the chunks end by " + std::to_string(*b.end_record) +
                              ", they reach " + reach
                        : "chunks reach " + reach +
                              " but there is no end record: the store sees none of them")
        .key = EscapeBytes(keys::BlobEnd(b.blob));
  }

  // Blob files that no extent record names and no one owns: bytes left by
  // a crash between storing them and recording them, or by a removal that
  // failed half way.
  void CheckUnrecordedBlobs() {
    std::map<uint64_t, uint64_t> stored;
    Status st = blobs_.List(&stored);
    if (!st.ok()) {
      ScanFailed(st, "the blob files");
      return;
    }
    std::set<uint64_t> recorded;  // orphans found through their extent records
    for (const Orphan& o : orphans_) recorded.insert(o.blob);
    for (const auto& [blob, bytes] : stored) {
      if (OwnerOf(blob) || recorded.count(blob) || used_packs_.count(blob)) continue;
      // A pack left empty goes at the next start.
      if (bytes == 0 && packs_.count(blob)) continue;
      AddFor(Kind::kOrphanBlob, nullptr, blob, std::nullopt,
             "a blob file of " + std::to_string(bytes) +
                 " bytes that no extent record names and no committed file or open session owns");
      orphans_.push_back({blob, report_.problems.size() - 1, 1});
      ++report_.orphan_blobs;
      report_.orphan_bytes += bytes;
    }
  }

  // The packs (records.h, "K"): blobs that hold other blobs' chunks. One
  // that no chunk names is an orphan blob like any other.
  void LoadPacks() {
    ScanFailed(kv_.Scan(keys::PackPrefix(), keys::PrefixEnd(keys::PackPrefix()),
                        [&](std::string_view k, std::string_view) {
                          uint64_t id = 0;
                          if (keys::ParseNumbered(k, &id)) {
                            packs_.insert(id);
                          } else {
                            Undecodable(k, "pack key is not 9 bytes");
                          }
                          return true;
                        }),
               "the pack records");
    // Pages a crash left to free (the next start frees them): their packs
    // are not orphans.
    ScanFailed(kv_.Scan(keys::PendingFreePrefix(), keys::PrefixEnd(keys::PendingFreePrefix()),
                        [&](std::string_view k, std::string_view) {
                          uint64_t pack = 0, offset = 0;
                          if (keys::ParsePair(k, &pack, &offset)) {
                            used_packs_.insert(pack);
                          } else {
                            Undecodable(k, "pending-free key is not 17 bytes");
                          }
                          return true;
                        }),
               "the pending-free records");
  }

  void StartBlob(uint64_t blob) {
    current_ = BlobState();  // not emplace(): clang 14 sees no default constructor here
    current_->blob = blob;
    current_->owner = OwnerOf(blob);
    if (current_->owner && current_->owner->side == Owner::Side::kCommitted) {
      current_->hasher = options_.new_sha256();
    }
    if (current_->owner) last_owned_blob_ = blob;
  }

  // The verdict on the blob streamed so far.
  void FinishBlob() {
    if (!current_) return;
    BlobState& b = *current_;
    if (!b.owner) {
      AddFor(Kind::kOrphanBlob, nullptr, b.blob, b.first_offset,
             std::to_string(b.chunks) + " chunks, " + std::to_string(b.bytes) +
                 " bytes that no committed file and no open session owns");
      orphans_.push_back({b.blob, report_.problems.size() - 1, std::max<uint64_t>(b.end, 1)});
      ++report_.orphan_blobs;
      report_.orphan_bytes += b.bytes;
    } else {
      CheckEndRecord(b);
      if (b.owner->side == Owner::Side::kCommitted) VerifyCommitted(b);
    }
    current_.reset();
  }

  void VerifyCommitted(BlobState& b) {
    const Owner& o = *b.owner;
    if (b.covered_end < o.length) {
      AddFor(Kind::kMissingExtent, &o, b.blob, b.covered_end,
             "no extent for bytes " + RangeText(b.covered_end, o.length) + " of " +
                 std::to_string(o.length));
      b.explained = true;
      b.hash_broken = true;
    }
    if (b.hash_broken || b.hashed_end != o.length) {
      if (!b.explained) {
        AddFor(Kind::kHashMismatch, &o, b.blob, std::nullopt,
               "could not rehash: the chunks do not run contiguously from 0 to " +
                   std::to_string(o.length));
      }
      return;
    }
    std::string actual = b.hasher->HexDigest();
    if (actual != o.sha256) {
      AddFor(Kind::kHashMismatch, &o, b.blob, std::nullopt,
             "recorded sha256 " + o.sha256 + ", the stored " + std::to_string(o.length) +
                 " bytes hash to " + actual);
      return;
    }
    ++report_.files_verified;
  }

  // Owners with an id below `blob` that had no chunk at all: empty blobs.
  void FinishUnseenOwners(uint64_t blob) {
    for (; owner_cursor_ < owners_.size() && owners_[owner_cursor_].id < blob; ++owner_cursor_) {
      const Owner& o = owners_[owner_cursor_];
      if (o.side != Owner::Side::kCommitted) continue;
      if (last_owned_blob_ && *last_owned_blob_ == o.id) continue;               // it had chunks
      if (owner_cursor_ > 0 && owners_[owner_cursor_ - 1].id == o.id) continue;  // a duplicate
      BlobState b;
      b.blob = o.id;
      b.owner = &o;
      b.hasher = options_.new_sha256();
      VerifyCommitted(b);
    }
  }

  void CheckNextId() {
    if (next_id_ && *next_id_ <= max_id_) {
      Add(Kind::kIndex, "the next id to hand out is " + std::to_string(*next_id_) + ", but id " +
                            std::to_string(max_id_) + " is in use: new files would reuse it")
          .key = EscapeBytes(keys::kNextIdKey);
    }
  }

  // ---- repair ----

  Status RemoveOrphans() {
    if (orphans_.empty() && orphan_node_keys_.empty()) return Status::OK();
    if (index_incomplete_ || scan_failed_) {
      report_.removal_skipped =
          "orphans were not removed: some records could not be read or decoded, so an owner may be "
          "missing "
          "from what the check saw";
      return Status::OK();
    }
    const size_t batch = std::max<size_t>(1, options_.removal_batch_keys);
    for (const auto& [blob, problem, end] : orphans_) {
      // Extent records first, then the bytes they named; each round starts
      // past the keys the last one deleted (LevelDB would step over them
      // again, making a large orphan's removal quadratic).
      std::string from = keys::Extent(blob, 0);
      for (;;) {
        KvWrite write;
        UPFS_RETURN_IF_ERROR(
            kv_.Scan(from, keys::Extent(blob + 1, 0), [&](std::string_view k, std::string_view) {
              if (write.ops.size() >= batch) return false;
              write.Delete(std::string(k));
              return true;
            }));
        if (write.ops.empty()) break;
        from = write.ops.back().first + '\0';
        UPFS_RETURN_IF_ERROR(kv_.Commit(write, /*sync=*/false));
        report_.keys_removed += write.ops.size();
      }
      UPFS_RETURN_IF_ERROR(blobs_.Truncate(blob, 0, end));
      report_.problems[problem].repaired = true;
    }
    for (size_t i = 0; i < orphan_node_keys_.size(); i += batch) {
      KvWrite write;
      for (size_t j = i; j < std::min(orphan_node_keys_.size(), i + batch); ++j)
        write.Delete(orphan_node_keys_[j]);
      UPFS_RETURN_IF_ERROR(kv_.Commit(write, /*sync=*/false));
      report_.keys_removed += write.ops.size();
    }
    for (size_t p : orphan_node_problems_) report_.problems[p].repaired = true;
    // One sync makes every removal above durable.
    return kv_.Commit(KvWrite{}, /*sync=*/true);
  }

  Kv& kv_;
  BlobFiles& blobs_;
  const FsckOptions& options_;
  FsckReport report_;

  bool index_incomplete_ = false;  // some index record did not decode
  bool scan_failed_ = false;       // some scan did not see every key
  std::optional<uint64_t> next_id_;
  uint64_t max_id_ = 0;

  std::map<std::string, AssetTally> assets_;
  std::set<std::string> undecodable_assets_;
  std::set<std::string> undecodable_entries_;  // their keys
  std::vector<CommittedId> committed_ids_;
  std::vector<Owner> owners_;  // sorted by id once the index is read

  std::optional<BlobState> current_;
  std::optional<uint64_t> last_owned_blob_;
  size_t owner_cursor_ = 0;

  struct Orphan {
    uint64_t blob;
    size_t problem;  // index in report_.problems
    uint64_t end;    // bound on its bytes, for BlobFiles::Truncate
  };
  std::vector<Orphan> orphans_;
  std::set<uint64_t> packs_;       // the pack records' ("K")
  std::set<uint64_t> used_packs_;  // packs some extent record names
  std::vector<std::string> orphan_node_keys_;
  std::vector<size_t> orphan_node_problems_;
};

}  // namespace

const char* FsckProblemKindName(FsckProblemKind kind) {
  switch (kind) {
    case Kind::kHashMismatch:
      return "hash mismatch";
    case Kind::kMissingExtent:
      return "missing extent";
    case Kind::kOverlappingExtents:
      return "overlapping extents";
    case Kind::kBeyondLength:
      return "data beyond length";
    case Kind::kUnreadableChunk:
      return "unreadable chunk";
    case Kind::kExtentWithoutChunk:
      return "extent without chunk";
    case Kind::kExtentLength:
      return "extent length mismatch";
    case Kind::kChunkChecksum:
      return "chunk checksum mismatch";
    case Kind::kUndecodable:
      return "undecodable record";
    case Kind::kIndex:
      return "index inconsistency";
    case Kind::kMissingId:
      return "missing id record";
    case Kind::kDanglingId:
      return "dangling id record";
    case Kind::kOrphanBlob:
      return "orphan blob";
    case Kind::kOrphanNode:
      return "orphan node";
    case Kind::kReadError:
      return "read error";
  }
  return "problem";
}

std::string EscapeBytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    }
  }
  return out;
}

std::string FsckProblem::ToString() const {
  std::string out;
  if (!asset.empty()) {
    out = "asset " + EscapeBytes(asset);
  } else if (!session.empty()) {
    out = "session " + EscapeBytes(session);
  } else if (blob) {
    out = "blob " + std::to_string(*blob);
  }
  if (!path.empty()) out += (out.empty() ? "file " : " file ") + EscapeBytes(path);
  if (offset) out += (out.empty() ? "offset " : " offset ") + std::to_string(*offset);
  if (!key.empty()) out += (out.empty() ? "record " : " record ") + key;
  if (out.empty()) out = "store";
  out += ": ";
  out += FsckProblemKindName(kind);
  out += ": ";
  out += message;
  if (repaired) out += " (removed)";
  return out;
}

size_t FsckReport::unrepaired() const {
  return static_cast<size_t>(std::count_if(problems.begin(), problems.end(),
                                           [](const FsckProblem& p) { return !p.repaired; }));
}

bool FsckReport::clean() const { return unrepaired() == 0; }

std::string FsckReport::Summary() const {
  std::string out = std::to_string(assets) + " assets, " + std::to_string(asset_files) +
                    " files (" + std::to_string(files_verified) + " verified, " +
                    std::to_string(bytes_hashed) + " bytes hashed), " + std::to_string(sessions) +
                    " open sessions (" + std::to_string(session_nodes) + " nodes), " +
                    std::to_string(chunks) + " chunks; " + std::to_string(orphan_blobs) +
                    " orphan blobs (" + std::to_string(orphan_bytes) + " bytes); " +
                    std::to_string(problems.size()) + " problems";
  const size_t left = unrepaired();
  if (left != problems.size()) {
    out += ", " + std::to_string(problems.size() - left) + " repaired (" +
           std::to_string(keys_removed) + " keys removed)";
  }
  if (!removal_skipped.empty()) out += "; " + removal_skipped;
  return out;
}

Result<FsckReport> CheckStore(KvStore& store, const FsckOptions& options) {
  if (!options.new_sha256)
    return Status::InvalidArgument("fsck needs a SHA-256 hasher (FsckOptions::new_sha256)");
  return Checker(*store.kv(), *store.blobs(), options).Run();
}

}  // namespace upfs::store
