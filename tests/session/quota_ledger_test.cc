// QuotaLedger with several mounts (session/quota.h): two ledgers, each on
// its own store over one Kv with a lease of its own (two mounts of one
// RADOS namespace), hold a uid's per-user limits together.
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "session/quota.h"
#include "store/blob_files.h"
#include "store/kv_store.h"
#include "store/memory_kv.h"
#include "tests/support/fake_lease.h"
#include "tests/support/shared_kv.h"
#include "tests/support/status_assertions.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::FakeLease;
using upfs::testing::SharedKv;

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Mount {
  Mount(std::shared_ptr<store::Kv> kv, const std::string& id, uint64_t quota, uint64_t max_sessions)
      : lease(std::make_shared<FakeLease>(id)) {
    auto opened = store::KvStore::Open(std::make_unique<SharedKv>(std::move(kv)),
                                       std::make_unique<store::MemoryBlobFiles>(),
                                       /*create=*/true, lease);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    ledger = std::make_unique<QuotaLedger>(quota, max_sessions, store.get());
  }
  std::shared_ptr<FakeLease> lease;
  std::unique_ptr<store::KvStore> store;
  std::unique_ptr<QuotaLedger> ledger;
};

}  // namespace

TEST_CASE(
    "quota: with several mounts a uid's sessions on all of them stay within -o quota and -o "
    "max_sessions, and a session's end gives its share back",
    "[quota]") {
  auto kv = std::make_shared<store::MemoryKv>();
  const std::string a_id = "00000000000000aa", b_id = "00000000000000bb";
  const uint64_t quota = 1'000'000;  // grants grow in steps of 64 KiB
  Mount a(kv, a_id, quota, 2), b(kv, b_id, quota, 2);
  a.lease->live = b.lease->live = {a_id, b_id};
  const uint32_t uid = 1000;
  REQUIRE(a.ledger->GrantStep() == 64 * 1024);

  REQUIRE_OK(a.ledger->AddSession(uid));
  REQUIRE_OK(b.ledger->AddSession(uid));
  // A third session, on either mount, passes max_sessions.
  Status third = b.ledger->AddSession(uid);
  REQUIRE_CODE(third, kQuotaExceeded);
  CHECK(Has(third.message(), "-o max_sessions=2"));
  CHECK(Has(third.message(), "other mounts of this store hold grants of"));

  // A's writes take grants one step beyond what they need.
  for (int i = 0; i < 3; ++i) REQUIRE_OK(a.ledger->ReserveBytes(uid, 100'000));
  const uint64_t a_share = a.ledger->Of(uid).granted.bytes;
  CHECK(a_share == 300'000 + 64 * 1024);
  // B may take what A's share leaves, not a byte more, though each mount
  // alone is within the quota.
  REQUIRE_OK(b.ledger->ReserveBytes(uid, quota - a_share));
  Status over = b.ledger->ReserveBytes(uid, 1);
  REQUIRE_CODE(over, kQuotaExceeded);
  CHECK(Has(over.message(), "-o quota"));
  CHECK(b.ledger->Of(uid).bytes == quota - a_share);
  CHECK(b.ledger->refusals() == 2);

  // Unused steps go back at the sweep (Trim); B gets them.
  a.ledger->Trim();
  CHECK(a.ledger->Of(uid).granted.bytes == 300'000);
  REQUIRE_OK(b.ledger->ReserveBytes(uid, 64 * 1024));
  REQUIRE_CODE(b.ledger->ReserveBytes(uid, 1), kQuotaExceeded);
  // A's session ends (a commit): its bytes and its place go back at once.
  a.ledger->RemoveSession(uid, 300'000);
  a.ledger->GiveBack(uid);
  CHECK(a.ledger->Of(uid).granted.bytes == 0);
  CHECK(a.ledger->Of(uid).granted.sessions == 0);
  REQUIRE_OK(b.ledger->ReserveBytes(uid, 300'000));
  REQUIRE_OK(b.ledger->AddSession(uid));
  REQUIRE_CODE(a.ledger->AddSession(uid), kQuotaExceeded);

  // A session counted without asking (taken over from a mount that died)
  // is granted whatever it holds, past the limits.
  a.ledger->CountSession(uid, 200'000);
  CHECK(a.ledger->Of(uid).granted.bytes == 200'000);
  CHECK(a.ledger->Of(uid).granted.sessions == 1);
  // B's mount dies: its grants count no more.
  a.lease->live = {a_id};
  REQUIRE_OK(a.ledger->ReserveBytes(uid, quota - 200'000));
  REQUIRE_OK(a.ledger->AddSession(uid));
  // uid 0 is never refused, and asks for nothing.
  REQUIRE_OK(a.ledger->ReserveBytes(0, 10 * quota));
  CHECK(a.ledger->Of(0).granted.bytes == 0);
}

TEST_CASE(
    "quota: with several mounts a session given to another owner takes its share of the limits "
    "with it",
    "[quota]") {
  auto kv = std::make_shared<store::MemoryKv>();
  const std::string a_id = "00000000000000aa", b_id = "00000000000000bb";
  const uint64_t quota = 1'000'000;
  Mount a(kv, a_id, quota, 1), b(kv, b_id, quota, 1);
  a.lease->live = b.lease->live = {a_id, b_id};
  const uint32_t alice = 1000, bob = 1001;
  REQUIRE_OK(a.ledger->AddSession(alice));
  REQUIRE_OK(a.ledger->ReserveBytes(alice, 300'000));
  REQUIRE_CODE(b.ledger->AddSession(alice), kQuotaExceeded);

  // chown of sessions/NAME from alice to bob, on A.
  a.ledger->MoveSession(alice, bob, 300'000);
  a.ledger->Resettle(alice, bob);
  CHECK(a.ledger->Of(alice).granted.bytes == 0);
  CHECK(a.ledger->Of(alice).granted.sessions == 0);
  CHECK(a.ledger->Of(bob).bytes == 300'000);
  CHECK(a.ledger->Of(bob).granted.bytes == 300'000);
  CHECK(a.ledger->Of(bob).granted.sessions == 1);
  // Alice's place is free on every mount; bob's is taken on every mount.
  REQUIRE_OK(b.ledger->AddSession(alice));
  REQUIRE_OK(b.ledger->ReserveBytes(alice, quota));
  REQUIRE_CODE(b.ledger->AddSession(bob), kQuotaExceeded);
  REQUIRE_OK(b.ledger->ReserveBytes(bob, quota - 300'000));
  REQUIRE_CODE(b.ledger->ReserveBytes(bob, 1), kQuotaExceeded);
}

}  // namespace upfs::session::testing
