// SharedKv: a Kv that forwards to one shared instance, so that an
// in-memory store survives the Engine (which owns its Store, which owns
// its Kv), and so that two stores can serve one Kv, as two mounts of one
// RADOS namespace do.
#pragma once

#include <memory>
#include <string_view>
#include <utility>

#include "store/kv.h"

namespace upfs::testing {

class SharedKv : public store::Kv {
 public:
  explicit SharedKv(std::shared_ptr<store::Kv> kv) : kv_(std::move(kv)) {}
  Status Get(std::string_view key, std::string* value) const override {
    return kv_->Get(key, value);
  }
  Status Scan(std::string_view begin, std::string_view end,
              const store::KvVisitor& visit) const override {
    return kv_->Scan(begin, end, visit);
  }
  Status Commit(const store::KvWrite& write, bool sync) override {
    return kv_->Commit(write, sync);
  }
  Status Compact(std::string_view begin, std::string_view end) override {
    return kv_->Compact(begin, end);
  }

 private:
  std::shared_ptr<store::Kv> kv_;
};

}  // namespace upfs::testing
