// FakeLease: a mount's lease (store::MountLease) whose live mounts the
// test sets, so that stores over one Kv act as mounts of one RADOS
// namespace whose leases hold or run out on demand.
#pragma once

#include <set>
#include <string>
#include <utility>

#include "store/mount_lease.h"

namespace upfs::testing {

class FakeLease : public store::MountLease {
 public:
  explicit FakeLease(std::string id) : id_(std::move(id)), description_("fake " + id_) {}
  const std::string& Id() const override { return id_; }
  const std::string& Description() const override { return description_; }
  Status Held() const override { return Status::OK(); }
  Result<std::set<std::string>> LiveIds() override { return live; }
  Status Fence(const std::string&) override { return Status::OK(); }
  std::set<std::string> live;

 private:
  const std::string id_;
  const std::string description_;
};

}  // namespace upfs::testing
