#include "store/rados_kv.h"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <list>
#include <set>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "store/records.h"

namespace upfs::store {
namespace {

using librados::bufferlist;

constexpr char kExtentTag = keys::kExtentTag;
constexpr size_t kExtentObjectKeyBytes = 9;  // the tag and the blob id
constexpr std::string_view kExtentObjectPrefix = "upfs.x.";
// Beyond this many blobs a scan lists the extent objects instead of
// trying each blob's in turn.
constexpr uint64_t kMaxProbedBlobs = 64;

bool IsExtentKey(std::string_view key) { return !key.empty() && key[0] == kExtentTag; }

// The blob of an extent key or bound: its 8 bytes after the tag, missing
// bytes read as zeros.
uint64_t BlobOfBound(std::string_view key) {
  uint64_t blob = 0;
  for (size_t i = 1; i < kExtentObjectKeyBytes; ++i) {
    blob = (blob << 8) | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0);
  }
  return blob;
}

// The extent keys' range: the tag, and the tag after it.
constexpr char kExtentKeysBeginText[] = {kExtentTag, '\0'};
constexpr char kExtentKeysEndText[] = {kExtentTag + 1, '\0'};
constexpr std::string_view kExtentKeysBegin = kExtentKeysBeginText,
                           kExtentKeysEnd = kExtentKeysEndText;

// The blobs whose extent keys may fall in [lo, hi), a range within
// [kExtentKeysBegin, kExtentKeysEnd): false when there are none.
bool BlobRange(std::string_view lo, std::string_view hi, uint64_t* first, uint64_t* last) {
  *first = BlobOfBound(lo);
  *last = hi == kExtentKeysEnd ? std::numeric_limits<uint64_t>::max() : BlobOfBound(hi);
  if (hi != kExtentKeysEnd && hi.size() <= kExtentObjectKeyBytes) {
    // A bound of 9 bytes or fewer sorts before every key of its blob.
    if (*last == 0) return false;
    --*last;
  }
  return *first <= *last;
}

// "T", the writer's mount id (16 hex digits; none in stores of a upfs
// that had one mount at a time), the seq.
std::string IntentKey(const std::string& mount, uint64_t seq) {
  std::string key(1, keys::kIntentTag);
  key += mount;
  keys::AppendBigEndian64(&key, seq);
  return key;
}
constexpr size_t kOldIntentKeyBytes = 9;
constexpr size_t kMountIdBytes = 16;
constexpr size_t kIntentKeyBytes = 1 + kMountIdBytes + 8;

// The lock that one process at a time holds while it completes intents of
// others, so that an intent is applied by one process only: a second one,
// late, would otherwise apply it again over newer writes of its keys.
constexpr const char* kRecoverLock = "upfs.recover";
constexpr std::chrono::seconds kRecoverLease{120};

std::string_view View(const bufferlist& bl) {
  // c_str() makes the list one contiguous buffer.
  return std::string_view(const_cast<bufferlist&>(bl).c_str(), bl.length());
}

void AppendBytes(std::string* out, std::string_view bytes) {
  keys::AppendBigEndian64(out, bytes.size());
  out->append(bytes);
}

bool ReadBytes(std::string_view* in, std::string_view* bytes) {
  if (in->size() < 8) return false;
  const uint64_t n = keys::ReadBigEndian64(*in);
  in->remove_prefix(8);
  if (in->size() < n) return false;
  *bytes = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

// An intent: the count of operations, then for each a byte (1 put, 0
// delete), the key and, for a put, the value, each length-prefixed.
std::string EncodeKvWrite(const KvWrite& write) {
  std::string out;
  keys::AppendBigEndian64(&out, write.ops.size());
  for (const auto& [key, value] : write.ops) {
    out.push_back(value ? 1 : 0);
    AppendBytes(&out, key);
    if (value) AppendBytes(&out, *value);
  }
  return out;
}

bool DecodeKvWrite(std::string_view in, KvWrite* write) {
  if (in.size() < 8) return false;
  uint64_t count = keys::ReadBigEndian64(in);
  in.remove_prefix(8);
  KvWrite decoded;
  for (uint64_t i = 0; i < count; ++i) {
    if (in.empty()) return false;
    const bool put = in[0] == 1;
    in.remove_prefix(1);
    std::string_view key, value;
    if (!ReadBytes(&in, &key) || (put && !ReadBytes(&in, &value))) return false;
    if (put) {
      decoded.Put(std::string(key), std::string(value));
    } else {
      decoded.Delete(std::string(key));
    }
  }
  if (!in.empty()) return false;
  *write = std::move(decoded);
  return true;
}

std::string RadosKv::ExtentObject(uint64_t blob) {
  char name[40];
  std::snprintf(name, sizeof name, "upfs.x.%016llx", static_cast<unsigned long long>(blob));
  return name;
}

std::string RadosKv::ObjectOf(std::string_view key) {
  return IsExtentKey(key) ? ExtentObject(BlobOfBound(key)) : std::string(kMetaObject);
}

RadosKv::RadosKv(std::shared_ptr<RadosConnection> conn, librados::IoCtx io, std::string pool)
    : conn_(std::move(conn)), io_(std::move(io)), pool_(std::move(pool)) {}

RadosKv::~RadosKv() {
  WaitForBackground();
  MutexLock lock(bg_mu_);
  ReapLocked();
  for (const auto& [oid, st] : bg_failed_) {
    spdlog::error(
        "rados pool {}: records written in the background to {} failed, and nobody asked: {}",
        pool_, oid, st.ToString());
  }
}

void RadosKv::OnBackgroundDone(librados::completion_t, void* arg) {
  auto* c = static_cast<Background*>(arg);
  RadosKv* self = c->owner;
  // Notified under the lock: once it is released, the destructor may run.
  MutexLock lock(self->bg_mu_);
  c->rc = c->completion->get_return_value();
  c->done = true;
  --self->bg_in_flight_;
  // The commit of this object queued behind it (at most one) goes out now.
  for (auto& next : self->bg_) {
    if (next.oid == c->oid && !next.sent) {
      self->SendLocked(&next);
      break;
    }
  }
  self->bg_cv_.SignalAll();
}

void RadosKv::ReapLocked() const {
  for (auto it = bg_.begin(); it != bg_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    // Removing keys from an object that does not exist removes nothing.
    const bool nothing_removed = it->rc == -ENOENT && !it->puts;
    if (it->rc < 0 && !nothing_removed && !bg_failed_.count(it->oid)) {
      bg_failed_[it->oid] = FromRados(it->rc, "writing " + std::to_string(it->ops.size()) +
                                                  " records in the background to the omap of " +
                                                  it->oid + " (pool " + pool_ + ")");
    }
    // Its keys now read from RADOS, unless a newer commit under way
    // writes them too.
    for (const auto& [key, value] : it->ops) {
      auto k = bg_keys_.find(key);
      if (k != bg_keys_.end() && k->second.first == it->seq) bg_keys_.erase(k);
    }
    it->completion->release();
    it = bg_.erase(it);
  }
}

void RadosKv::WaitForBackground() const {
  MutexLock lock(bg_mu_);
  while (bg_in_flight_ != 0) bg_cv_.Wait(bg_mu_);
  ReapLocked();
}

void RadosKv::WaitForBackgroundKeys(std::string_view begin, std::string_view end) const {
  MutexLock lock(bg_mu_);
  for (;;) {
    ReapLocked();
    auto k = bg_keys_.lower_bound(begin);
    if (k == bg_keys_.end() || k->first >= end) return;
    bg_cv_.Wait(bg_mu_);
  }
}

Status RadosKv::CommitInBackground(const std::string& oid,
                                   std::map<std::string, std::optional<std::string>> ops) {
  MutexLock lock(bg_mu_);
  for (;;) {
    ReapLocked();
    // The newest commit of this object not yet stored, if any.
    Background* last = nullptr;
    for (auto it = bg_.rbegin(); it != bg_.rend(); ++it) {
      if (it->oid == oid && !it->done) {
        last = &*it;
        break;
      }
    }
    if (last != nullptr && !last->sent) {
      // Queued behind the one going out: this write joins it, unless it
      // is full (then wait until it goes out).
      if (last->ops.size() >= kMaxCoalescedKeys) {
        bg_cv_.Wait(bg_mu_);
        continue;
      }
      for (auto& [key, value] : ops) {
        bg_keys_[key] = {last->seq, value};
        last->ops[key] = std::move(value);  // the last operation on a key wins
      }
      return Status::OK();
    }
    if (last == nullptr && bg_in_flight_ >= kMaxBackgroundCommits) {
      bg_cv_.Wait(bg_mu_);
      continue;
    }
    Background* c = &bg_.emplace_back();
    c->owner = this;
    c->seq = bg_next_seq_++;
    c->oid = oid;
    c->ops = std::move(ops);
    for (const auto& [key, value] : c->ops) bg_keys_[key] = {c->seq, value};
    // One commit of an object at a time: behind one going out it waits
    // (OnBackgroundDone sends it), and the writes after it join it.
    if (last == nullptr) SendLocked(c);
    return Status::OK();
  }
}

void RadosKv::SendLocked(Background* c) const {
  librados::ObjectWriteOperation op;
  c->puts = OmapWrite(c->ops, {}, &op).first > 0;
  c->sent = true;
  ++background_sends_;
  c->completion = librados::Rados::aio_create_completion(c, &OnBackgroundDone);
  ++bg_in_flight_;
  // Sent under the lock, so that RADOS gets one object's commits in the
  // order of their seq (which bg_keys_ assumes).
  const int rc = io_.aio_operate(c->oid, c->completion, &op, librados::OPERATION_FULL_TRY);
  if (rc < 0) {
    // Not queued: no callback will come.
    c->done = true;
    c->rc = rc;
    --bg_in_flight_;
    bg_cv_.SignalAll();
  }
}

Status RadosKv::TakeWriteFailure(std::string_view key) {
  const std::string oid = ObjectOf(key);
  MutexLock lock(bg_mu_);
  while (std::any_of(bg_.begin(), bg_.end(),
                     [&](const Background& c) { return !c.done && c.oid == oid; })) {
    bg_cv_.Wait(bg_mu_);
  }
  ReapLocked();
  auto it = bg_failed_.find(oid);
  if (it == bg_failed_.end()) return Status::OK();
  Status st = std::move(it->second);
  bg_failed_.erase(it);
  return st;
}

Result<std::unique_ptr<RadosKv>> RadosKv::Open(std::shared_ptr<RadosConnection> conn,
                                               const std::string& pool, const std::string& ns,
                                               std::shared_ptr<RadosStoreLock> lock) {
  UPFS_ASSIGN_OR_RETURN(librados::IoCtx io, conn->OpenPool(pool, ns));
  std::unique_ptr<RadosKv> kv(new RadosKv(std::move(conn), std::move(io), pool));
  kv->lock_ = std::move(lock);
  if (kv->lock_) kv->mount_ = kv->lock_->Id();
  UPFS_RETURN_IF_ERROR(kv->RollForward());
  const char* kill = std::getenv(kKillAfterIntentVariable);
  kv->kill_after_intent_ = kill != nullptr && std::string_view(kill) == "1";
  if (kv->kill_after_intent_) {
    spdlog::warn("rados pool {}: {}=1: this process kills itself after its first intent (a test)",
                 pool, kKillAfterIntentVariable);
  }
  return kv;
}

Status RadosKv::RecoverStoppedWriters() { return RollForward(); }

Status RadosKv::RollForward() {
  // Shared stores: one process at a time completes others' intents.
  const std::string cookie = lock_ ? lock_->Description() : "";
  if (lock_) {
    timeval lease{static_cast<time_t>(kRecoverLease.count()), 0};
    const auto deadline = std::chrono::steady_clock::now() + kRecoverLease;
    for (;;) {
      const int rc =
          io_.lock_exclusive(RadosStoreLock::kObject, kRecoverLock, cookie, "", &lease, 0);
      if (rc == 0) break;
      if ((rc != -EBUSY && rc != -EEXIST) || std::chrono::steady_clock::now() > deadline) {
        return FromRados(
            rc, "taking the lock that completing interrupted commits needs (pool " + pool_ + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  struct Unlock {
    RadosKv* kv;
    const std::string& cookie;
    ~Unlock() {
      if (kv->lock_) kv->io_.unlock(RadosStoreLock::kObject, kRecoverLock, cookie);
    }
  } unlock{this, cookie};

  std::vector<std::pair<std::string, std::string>> intents;
  const std::string tag(1, keys::kIntentTag);
  UPFS_RETURN_IF_ERROR(
      Scan(tag, keys::PrefixEnd(tag), [&](std::string_view key, std::string_view value) {
        intents.emplace_back(key, value);
        return true;
      }));
  if (intents.empty()) return Status::OK();
  std::set<std::string> live;
  if (lock_) {
    UPFS_ASSIGN_OR_RETURN(live, lock_->LiveIds());
  }
  // Which to complete: fence each dead writer first (before view_mu_: Get
  // takes it).
  std::set<std::string> fenced;
  std::vector<std::pair<std::string, KvWrite>> todo;
  for (const auto& [key, value] : intents) {
    KvWrite write;
    if ((key.size() != kOldIntentKeyBytes && key.size() != kIntentKeyBytes) ||
        !DecodeKvWrite(value, &write)) {
      return Status::Corruption("intent record of " + std::to_string(value.size()) + " bytes in " +
                                kMetaObject + " does not decode");
    }
    const std::string owner = key.size() == kIntentKeyBytes ? key.substr(1, kMountIdBytes) : "";
    if (!owner.empty()) {
      // This process's own are pending_ (FinishPendingLocked); a live
      // mount completes its own.
      if (owner == mount_ || live.count(owner)) continue;
      if (!fenced.count(owner) && lock_) {
        std::string description = "mount " + owner;
        if (Status got = Get(keys::InUse(owner), &description); !got.ok() && !got.IsNotFound())
          return got;
        UPFS_RETURN_IF_ERROR(
            lock_->Fence(description)
                .WithContext("completing the interrupted commits of mount '" + description + "'"));
        fenced.insert(owner);
      }
    }
    todo.emplace_back(key, std::move(write));
  }
  uint64_t rolled = 0;
  WriterLock view(view_mu_);
  for (const auto& [key, write] : todo) {
    Intent intent{key, {}};
    for (const auto& [k, v] : write.ops) intent.by_object[ObjectOf(k)][k] = v;
    pending_ = std::move(intent);
    UPFS_RETURN_IF_ERROR(FinishPendingLocked());
    if (key.size() == kOldIntentKeyBytes) {
      next_intent_ =
          std::max(next_intent_, keys::ReadBigEndian64(std::string_view(key).substr(1)) + 1);
    }
    ++rolled;
  }
  rolled_forward_ += rolled;
  if (rolled > 0)
    spdlog::info("rados pool {}: rolled {} interrupted commits forward", pool_, rolled);
  return Status::OK();
}

std::pair<size_t, size_t> RadosKv::OmapWrite(
    const std::map<std::string, std::optional<std::string>>& ops,
    const std::map<std::string, std::string>& extra_puts, librados::ObjectWriteOperation* op) {
  std::map<std::string, bufferlist> puts;
  std::set<std::string> deletes;
  for (const auto& [key, value] : extra_puts) puts[key].append(value);
  for (const auto& [key, value] : ops) {
    if (value) {
      puts[key].append(*value);
    } else {
      deletes.insert(key);
    }
  }
  // Puts first: they create the object, which a removal of keys needs.
  if (!puts.empty()) op->omap_set(puts);
  if (!deletes.empty()) op->omap_rm_keys(deletes);
  return {puts.size(), deletes.size()};
}

Status RadosKv::Apply(const std::string& oid,
                      const std::map<std::string, std::optional<std::string>>& ops,
                      const std::map<std::string, std::string>& extra_puts,
                      const KvWrite* expects) {
  librados::ObjectWriteOperation op;
  int cmp_rc = 0;
  if (expects != nullptr && !expects->expects.empty()) {
    // A missing key compares as an empty value (values are never empty).
    std::map<std::string, std::pair<bufferlist, int>> assertions;
    for (const auto& [key, value] : expects->expects) {
      bufferlist bl;
      if (value) bl.append(*value);
      assertions[key] = {std::move(bl), LIBRADOS_CMPXATTR_OP_EQ};
    }
    op.omap_cmp(assertions, &cmp_rc);
  }
  const auto [puts, deletes] = OmapWrite(ops, extra_puts, &op);
  const int rc = io_.operate(oid, &op, librados::OPERATION_FULL_TRY);
  if (rc == -ECANCELED) {
    return Status::Stale("a record of " + oid + " (pool " + pool_ +
                         ") was changed by another mount meanwhile");
  }
  // Removing keys from an object that does not exist removes nothing.
  if (rc == -ENOENT && puts == 0) return Status::OK();
  return FromRados(rc, "writing " + std::to_string(puts) + " keys and removing " +
                           std::to_string(deletes) + " in the omap of " + oid + " (pool " + pool_ +
                           ")");
}

Status RadosKv::Commit(const KvWrite& write, bool sync) {
  if (lock_) UPFS_RETURN_IF_ERROR(lock_->Held());
  for (const auto& [key, value] : write.expects) {
    if (ObjectOf(key) != kMetaObject) {
      return Status::InvalidArgument("a condition on a key of " + ObjectOf(key) + ": only " +
                                     kMetaObject + "'s keys can be checked with a write");
    }
  }
  ObjectOps by_object;
  for (const auto& [key, value] : write.ops) {
    if (IsExtentKey(key) && key.size() < kExtentObjectKeyBytes) {
      return Status::InvalidArgument("key of " + std::to_string(key.size()) +
                                     " bytes under the extent tag names no blob");
    }
    by_object[ObjectOf(key)][key] = value;  // the last operation on a key wins
  }
  if (by_object.empty()) return Status::OK();
  if (!sync && by_object.size() == 1 && by_object.begin()->first != kMetaObject && !has_pending_ &&
      write.expects.empty()) {
    return CommitInBackground(by_object.begin()->first, std::move(by_object.begin()->second));
  }
  // After every commit in the background: a commit that names a blob's
  // records (an asset's entries) must not be stored before them.
  WaitForBackground();
  if (has_pending_) {
    WriterLock view(view_mu_);
    UPFS_RETURN_IF_ERROR(FinishPendingLocked());
  }
  if (by_object.size() == 1 && (write.expects.empty() || by_object.begin()->first == kMetaObject)) {
    ReaderLock view(view_mu_);
    return Apply(by_object.begin()->first, by_object.begin()->second, {}, &write);
  }
  return CommitOps(std::move(by_object), write);
}

Status RadosKv::CommitOps(ObjectOps by_object, const KvWrite& write) {
  WriterLock view(view_mu_);
  UPFS_RETURN_IF_ERROR(FinishPendingLocked());
  const uint64_t seq = next_intent_++;
  Intent intent{IntentKey(mount_, seq), std::move(by_object)};
  static const std::map<std::string, std::optional<std::string>> kNoOps;
  auto meta = intent.by_object.find(kMetaObject);
  // The conditions go with the intent: once it is stored, the write is
  // decided.
  UPFS_RETURN_IF_ERROR(Apply(kMetaObject, meta == intent.by_object.end() ? kNoOps : meta->second,
                             {{intent.key, EncodeKvWrite(write)}}, &write));
  pending_ = std::move(intent);
  has_pending_ = true;
  if (kill_after_intent_) {
    spdlog::warn("rados pool {}: intent {} stored for a commit spanning {} objects: SIGKILL ({})",
                 pool_, seq, pending_->by_object.size(), kKillAfterIntentVariable);
    spdlog::default_logger()->flush();
    std::raise(SIGKILL);
  }
  if (stop_after_intent_.exchange(false)) {
    return Status::IOError("stopped after storing intent " + std::to_string(seq) +
                           " (fault injected by a test)");
  }
  return FinishPendingLocked();
}

Status RadosKv::FinishPendingLocked() {
  if (!pending_) return Status::OK();
  for (const auto& [oid, ops] : pending_->by_object) {
    // The meta part went with the intent.
    if (oid == kMetaObject) continue;
    if (Status st = Apply(oid, ops, {}); !st.ok()) {
      spdlog::error(
          "rados pool {}: a commit spanning {} objects stopped halfway ({}); writes wait for it to "
          "complete",
          pool_, pending_->by_object.size(), st.ToString());
      return st;
    }
  }
  UPFS_RETURN_IF_ERROR(Apply(kMetaObject, {{pending_->key, std::nullopt}}, {}));
  pending_.reset();
  has_pending_ = false;
  return Status::OK();
}

Status RadosKv::Get(std::string_view key, std::string* value) const {
  {
    // A key a commit under way writes reads as that commit leaves it.
    MutexLock lock(bg_mu_);
    auto k = bg_keys_.find(key);
    if (k != bg_keys_.end()) {
      if (!k->second.second) return Status::NotFound("key");
      *value = *k->second.second;
      return Status::OK();
    }
  }
  const std::string oid = ObjectOf(key);
  std::map<std::string, bufferlist> vals;
  const std::string k(key);
  ReaderLock view(view_mu_);
  const int rc = io_.omap_get_vals_by_keys(oid, {k}, &vals);
  if (rc == -ENOENT) return Status::NotFound("key");
  UPFS_RETURN_IF_ERROR(FromRados(rc, "reading a key of " + oid + " (pool " + pool_ + ")"));
  auto it = vals.find(k);
  if (it == vals.end()) return Status::NotFound("key");
  value->assign(View(it->second));
  return Status::OK();
}

Status RadosKv::ScanObject(const std::string& oid, std::string_view begin, std::string_view end,
                           const KvVisitor& visit, bool* stopped, bool stop_after_one_page,
                           bool* whole) const {
  *whole = true;
  std::string after;  // the last key read; empty: none yet
  bool first = true;
  for (;;) {
    librados::ObjectReadOperation op;
    std::map<std::string, bufferlist> exact, vals;
    bool more = false;
    int rv_exact = 0, rv_vals = 0;
    if (first && !begin.empty()) op.omap_get_vals_by_keys({std::string(begin)}, &exact, &rv_exact);
    op.omap_get_vals2(first ? std::string(begin) : after, "", kScanPage, &vals, &more, &rv_vals);
    const int rc = io_.operate(oid, &op, nullptr);
    if (rc == -ENOENT) return Status::OK();
    const std::string what = "reading the omap of " + oid + " (pool " + pool_ + ")";
    UPFS_RETURN_IF_ERROR(FromRados(rc, what));
    UPFS_RETURN_IF_ERROR(FromRados(rv_exact, what));
    UPFS_RETURN_IF_ERROR(FromRados(rv_vals, what));
    vals.merge(exact);
    for (const auto& [key, value] : vals) {
      if (std::string_view(key) >= end) return Status::OK();
      if (!visit(key, View(value))) {
        *stopped = true;
        return Status::OK();
      }
    }
    if (!more || vals.empty()) return Status::OK();
    if (stop_after_one_page) {
      *whole = false;
      return Status::OK();
    }
    after = vals.rbegin()->first;
    first = false;
  }
}

Status RadosKv::ExtentObjectsIn(uint64_t first, uint64_t last, std::vector<uint64_t>* blobs) const {
  blobs->clear();
  if (last - first < kMaxProbedBlobs) {
    for (uint64_t b = first;; ++b) {
      blobs->push_back(b);
      if (b == last) return Status::OK();
    }
  }
  try {
    for (auto it = io_.nobjects_begin(); it != io_.nobjects_end(); ++it) {
      const std::string& oid = it->get_oid();
      if (oid.size() != kExtentObjectPrefix.size() + 16 ||
          oid.compare(0, kExtentObjectPrefix.size(), kExtentObjectPrefix) != 0)
        continue;
      uint64_t blob = 0;
      const char* digits = oid.data() + kExtentObjectPrefix.size();
      auto [ptr, err] = std::from_chars(digits, digits + 16, blob, 16);
      if (err != std::errc() || ptr != digits + 16) continue;
      if (blob >= first && blob <= last) blobs->push_back(blob);
    }
  } catch (const std::exception& e) {
    // librados' object iterator reports failures by throwing.
    return Status::IOError("listing the objects of pool " + pool_ + ": " + e.what());
  }
  std::sort(blobs->begin(), blobs->end());
  return Status::OK();
}

Status RadosKv::Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const {
  if (begin >= end) return Status::OK();
  WaitForBackgroundKeys(begin, end);
  // One object and one page: a single consistent read, beside commits.
  std::optional<std::string> one_object;
  uint64_t first = 0, last = 0;
  if (end <= kExtentKeysBegin || begin >= kExtentKeysEnd) {
    one_object = kMetaObject;
  } else if (begin >= kExtentKeysBegin && end <= kExtentKeysEnd) {
    if (!BlobRange(begin, end, &first, &last)) return Status::OK();
    if (first == last) one_object = ExtentObject(first);
  }
  if (one_object) {
    ReaderLock view(view_mu_);
    bool stopped = false, whole = false;
    // Visits the first page only if it is the whole answer.
    std::vector<std::pair<std::string, std::string>> page;
    UPFS_RETURN_IF_ERROR(ScanObject(
        *one_object, begin, end,
        [&](std::string_view k, std::string_view v) {
          page.emplace_back(k, v);
          return true;
        },
        &stopped, /*stop_after_one_page=*/true, &whole));
    if (whole) {
      for (const auto& [k, v] : page) {
        if (!visit(k, v)) break;
      }
      return Status::OK();
    }
  }
  WriterLock view(view_mu_);
  return ScanLocked(begin, end, visit);
}

Status RadosKv::ScanLocked(std::string_view begin, std::string_view end,
                           const KvVisitor& visit) const {
  bool stopped = false, whole = false;
  const std::string_view x_begin = kExtentKeysBegin, x_end = kExtentKeysEnd;
  // Meta keys before the extent keys, the extent objects in blob order,
  // then meta keys after them: together, key order.
  if (begin < x_begin) {
    UPFS_RETURN_IF_ERROR(
        ScanObject(kMetaObject, begin, std::min(end, x_begin), visit, &stopped, false, &whole));
    if (stopped) return Status::OK();
  }
  const std::string_view lo = std::max(begin, x_begin), hi = std::min(end, x_end);
  uint64_t first = 0, last = 0;
  if (lo < hi && BlobRange(lo, hi, &first, &last)) {
    std::vector<uint64_t> blobs;
    UPFS_RETURN_IF_ERROR(ExtentObjectsIn(first, last, &blobs));
    for (uint64_t blob : blobs) {
      UPFS_RETURN_IF_ERROR(ScanObject(ExtentObject(blob), lo, hi, visit, &stopped, false, &whole));
      if (stopped) return Status::OK();
    }
  }
  if (end > x_end) {
    UPFS_RETURN_IF_ERROR(
        ScanObject(kMetaObject, std::max(begin, x_end), end, visit, &stopped, false, &whole));
  }
  return Status::OK();
}

Status RadosKv::Compact(std::string_view begin, std::string_view last) {
  if (!IsExtentKey(begin) && !IsExtentKey(last)) return Status::OK();
  WaitForBackground();
  const uint64_t first_blob = IsExtentKey(begin) ? BlobOfBound(begin) : 0;
  const uint64_t last_blob =
      IsExtentKey(last) ? BlobOfBound(last) : std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> blobs;
  UPFS_RETURN_IF_ERROR(ExtentObjectsIn(first_blob, last_blob, &blobs));
  // Its own context: the version of its last read is then its own.
  librados::IoCtx io;
  io.dup(io_);
  for (uint64_t blob : blobs) {
    const std::string oid = ExtentObject(blob);
    librados::ObjectReadOperation read;
    std::set<std::string> keys;
    bool more = false;
    int rv = 0;
    read.omap_get_keys2("", 1, &keys, &more, &rv);
    const int rc = io.operate(oid, &read, nullptr);
    if (rc == -ENOENT) continue;
    UPFS_RETURN_IF_ERROR(FromRados(rc, "reading the omap of " + oid));
    if (!keys.empty()) continue;
    // Removed only if no commit gave it keys since it was read empty.
    librados::ObjectWriteOperation remove;
    remove.assert_version(io.get_last_version());
    remove.remove();
    const int removed = io.operate(oid, &remove, librados::OPERATION_FULL_TRY);
    if (removed == -ERANGE || removed == -EOVERFLOW || removed == -ENOENT) continue;
    UPFS_RETURN_IF_ERROR(FromRados(removed, "removing the empty " + oid));
  }
  return Status::OK();
}

Status RadosKv::ReadSpace(uint64_t* total_bytes, uint64_t* free_bytes) const {
  librados::Rados& rados = conn_->rados();
  uint64_t total = std::numeric_limits<uint64_t>::max();
  uint64_t left = std::numeric_limits<uint64_t>::max();
  // The quota from the pool list: `osd pool get-quota` fails until the
  // monitor has the pool's first statistics.
  bufferlist out;
  std::string outs;
  const std::string cmd = R"({"prefix": "osd pool ls", "detail": "detail", "format": "json"})";
  UPFS_RETURN_IF_ERROR(
      FromRados(rados.mon_command(cmd, {}, &out, &outs), "reading the quota of pool " + pool_));
  const std::string json = out.to_str();
  uint64_t quota = 0;
  if (auto at = json.find("\"pool_name\":\"" + pool_ + "\""); at != std::string::npos) {
    const std::string field = "\"quota_max_bytes\":";
    if (auto q = json.find(field, at); q != std::string::npos) {
      std::from_chars(json.data() + q + field.size(), json.data() + json.size(), quota);
    }
  }
  if (quota > 0) {
    std::list<std::string> pools{pool_};
    librados::stats_map stats;
    // No statistics yet: nothing written yet.
    const int rc = rados.get_pool_stats(pools, stats);
    const uint64_t used = rc >= 0 ? stats[pool_].num_bytes : 0;
    total = quota;
    left = used < quota ? quota - used : 0;
  }
  librados::cluster_stat_t cluster;
  UPFS_RETURN_IF_ERROR(FromRados(rados.cluster_stat(cluster), "reading the cluster's free space"));
  // A cluster that has not yet reported its capacity (just started) has
  // kb 0: only the quota counts then.
  if (cluster.kb > 0) {
    total = std::min<uint64_t>(total, cluster.kb * 1024);
    left = std::min<uint64_t>(left, cluster.kb_avail * 1024);
  }
  if (total == std::numeric_limits<uint64_t>::max()) total = 0;  // nothing known yet
  *total_bytes = total;
  *free_bytes = std::min(left, total);
  return Status::OK();
}

Status RadosKv::RefreshSpaceLocked() {
  const auto now = std::chrono::steady_clock::now();
  if (now - space_checked_ < kSpaceCacheTime) return Status::OK();
  uint64_t total = 0, left = 0;
  UPFS_RETURN_IF_ERROR(ReadSpace(&total, &left));
  space_total_ = total;
  // Nothing known of the cluster or a quota yet: no limit.
  space_left_ = total == 0 ? std::numeric_limits<uint64_t>::max() : left;
  space_checked_ = now;
  return Status::OK();
}

Status RadosKv::GetSpace(uint64_t* total_bytes, uint64_t* free_bytes) {
  MutexLock lock(space_mu_);
  UPFS_RETURN_IF_ERROR(RefreshSpaceLocked());
  *total_bytes = space_total_;
  *free_bytes = std::min(space_left_, space_total_);
  return Status::OK();
}

Status RadosKv::CheckRoomForData(uint64_t bytes) {
  MutexLock lock(space_mu_);
  UPFS_RETURN_IF_ERROR(RefreshSpaceLocked());
  if (bytes > space_left_) {
    return Status::NoSpace("pool " + pool_ + " has " + std::to_string(space_left_) +
                           " bytes left before its quota or a full cluster; refusing " +
                           std::to_string(bytes) + " bytes of upload data until space is freed");
  }
  space_left_ -= bytes;
  return Status::OK();
}

}  // namespace upfs::store
