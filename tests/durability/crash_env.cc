#include "tests/durability/crash_env.h"

#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

namespace upfs::testing {
namespace {

std::string DirOf(const std::string& fname) {
  size_t slash = fname.rfind('/');
  return slash == std::string::npos ? std::string(".") : fname.substr(0, slash);
}

bool IsManifest(const std::string& fname) {
  size_t slash = fname.rfind('/');
  std::string base = slash == std::string::npos ? fname : fname.substr(slash + 1);
  return base.rfind("MANIFEST", 0) == 0;
}

// Forwards to the real file and reports appends and syncs to the Env.
class TrackedFile : public leveldb::WritableFile {
 public:
  TrackedFile(CrashEnv* env, std::string fname, std::unique_ptr<leveldb::WritableFile> target)
      : env_(env), fname_(std::move(fname)), target_(std::move(target)) {}

  leveldb::Status Append(const leveldb::Slice& data) override {
    leveldb::Status s = target_->Append(data);
    if (s.ok()) env_->Appended(fname_, data.size());
    return s;
  }
  leveldb::Status Close() override { return target_->Close(); }
  leveldb::Status Flush() override { return target_->Flush(); }
  leveldb::Status Sync() override {
    // After the crash a sync reaches nothing durable; the data stays in the
    // file (LevelDB may read it back) and is dropped later.
    if (!env_->BeforeSync(fname_)) return target_->Flush();
    leveldb::Status s = target_->Sync();
    if (s.ok()) env_->Synced(fname_);
    return s;
  }

 private:
  CrashEnv* const env_;
  const std::string fname_;
  const std::unique_ptr<leveldb::WritableFile> target_;
};

}  // namespace

CrashEnv::CrashEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}
CrashEnv::~CrashEnv() = default;

leveldb::Status CrashEnv::NewWritableFile(const std::string& fname,
                                          leveldb::WritableFile** result) {
  if (fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".ldb") == 0) {
    std::unique_lock lock(mu_);
    hold_released_.wait(lock, [this] { return !hold_tables_; });
  }
  leveldb::WritableFile* raw = nullptr;
  leveldb::Status s = target()->NewWritableFile(fname, &raw);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    CountEventLocked();
  }
  // A fresh (or truncated) file: nothing of it is durable yet, not even its
  // name.
  Track(fname, 0, /*entry_durable=*/false);
  *result = new TrackedFile(this, fname, std::unique_ptr<leveldb::WritableFile>(raw));
  return s;
}

leveldb::Status CrashEnv::NewAppendableFile(const std::string& fname,
                                            leveldb::WritableFile** result) {
  uint64_t existing = 0;
  bool existed = target()->GetFileSize(fname, &existing).ok();
  leveldb::WritableFile* raw = nullptr;
  leveldb::Status s = target()->NewAppendableFile(fname, &raw);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    CountEventLocked();
    auto it = files_.find(fname);
    if (it != files_.end()) {
      *result = new TrackedFile(this, fname, std::unique_ptr<leveldb::WritableFile>(raw));
      return s;  // already tracked: keep what we know of it
    }
  }
  // What was there before we saw it counts as durable.
  Track(fname, existed ? existing : 0, existed);
  *result = new TrackedFile(this, fname, std::unique_ptr<leveldb::WritableFile>(raw));
  return s;
}

leveldb::Status CrashEnv::RemoveFile(const std::string& fname) {
  std::lock_guard lock(mu_);
  // A removal after the crash never became durable: keep the file, so the
  // pre-crash state can be rebuilt from it.
  if (crashed_) return leveldb::Status::OK();
  leveldb::Status s = target()->RemoveFile(fname);
  if (s.ok()) files_.erase(fname);
  return s;
}

leveldb::Status CrashEnv::RenameFile(const std::string& src, const std::string& target_name) {
  std::lock_guard lock(mu_);
  if (crashed_) return leveldb::Status::IOError(src, "simulated crash: the filesystem is gone");
  leveldb::Status s = target()->RenameFile(src, target_name);
  if (!s.ok()) return s;
  auto it = files_.find(src);
  if (it != files_.end()) {
    FileState state = it->second;
    files_.erase(it);
    files_[target_name] = state;
  } else {
    files_.erase(target_name);  // replaced by an untracked (durable) file
  }
  return s;
}

void CrashEnv::Crash() {
  std::lock_guard lock(mu_);
  crashed_ = true;
}

void CrashEnv::CrashAfter(uint64_t events) {
  std::lock_guard lock(mu_);
  crash_at_event_ = events == 0 ? 0 : events_ + events;
}

void CrashEnv::HoldTableFiles(bool hold) {
  {
    std::lock_guard lock(mu_);
    hold_tables_ = hold;
  }
  hold_released_.notify_all();
}

bool CrashEnv::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}

uint64_t CrashEnv::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

bool CrashEnv::CountEventLocked() {
  ++events_;
  if (crash_at_event_ != 0 && events_ >= crash_at_event_) crashed_ = true;
  return crashed_;
}

void CrashEnv::Track(const std::string& fname, uint64_t existing_bytes, bool entry_durable) {
  std::lock_guard lock(mu_);
  FileState state;
  state.size = existing_bytes;
  // A file created after the crash has nothing durable.
  state.synced = crashed_ ? 0 : existing_bytes;
  state.entry_durable = entry_durable && !crashed_;
  files_[fname] = state;
}

void CrashEnv::Appended(const std::string& fname, uint64_t bytes) {
  std::lock_guard lock(mu_);
  CountEventLocked();
  files_[fname].size += bytes;
}

bool CrashEnv::BeforeSync(const std::string& /*fname*/) {
  std::lock_guard lock(mu_);
  return !CountEventLocked();
}

void CrashEnv::Synced(const std::string& fname) {
  std::lock_guard lock(mu_);
  // A crash that came while the sync ran (another thread's event) wins: the
  // sync may not have completed before the power went.
  if (crashed_) return;
  FileState& state = files_[fname];
  state.synced = state.size;
  if (!state.entry_durable || IsManifest(fname)) DirSyncedLocked(DirOf(fname));
}

void CrashEnv::DirSyncedLocked(const std::string& dir) {
  for (auto& [name, state] : files_) {
    if (DirOf(name) == dir) state.entry_durable = true;
  }
}

std::string CrashEnv::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  if (!crashed_) return "";
  namespace fs = std::filesystem;
  for (const auto& [name, state] : files_) {
    std::error_code ec;
    if (!fs::exists(name, ec)) continue;  // removed before the crash
    if (!state.entry_durable) {
      fs::remove(name, ec);
      if (ec) return "removing " + name + ": " + ec.message();
      continue;
    }
    uint64_t size = fs::file_size(name, ec);
    if (ec) return "sizing " + name + ": " + ec.message();
    if (size < state.synced) {
      return name + " has " + std::to_string(size) + " bytes, fewer than the " +
             std::to_string(state.synced) + " synced";
    }
    if (size > state.synced) {
      fs::resize_file(name, state.synced, ec);
      if (ec) return "truncating " + name + ": " + ec.message();
    }
  }
  files_.clear();
  return "";
}

}  // namespace upfs::testing
