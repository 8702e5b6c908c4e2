// ProcFs against a fake /proc tree, and once against the real one.
#include "fs/proc_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

namespace upfs::fs {
namespace {

void Write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A fake /proc: our mount table has the mount at /mnt/up (device 0:45,
// stacked over an older one); process 42 sees it as mount 77 and holds
// inode 17 of it on fd 3, inode 17 of another filesystem on fd 4.
struct FakeProc {
  upfs::testing::TempDir dir;
  FakeProc() {
    const auto root = dir.path();
    Write(root / "self/mountinfo",
          "24 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
          "30 24 0:40 / /mnt/up rw - fuse.upfs old rw\n"
          "31 30 0:45 / /mnt/up rw - fuse.upfs upfs:/s rw\n"
          "32 24 0:46 / /mnt/with\\040space rw - fuse.upfs upfs:/t rw\n");
    Write(root / "42/status", "Name:\tsha256sum\nTgid:\t42\nPid:\t42\n");
    Write(root / "43/status", "Name:\tworker\nTgid:\t42\nPid:\t43\n");
    Write(root / "50/status",
          "Name:\tcp\nTgid:\t50\nGid:\t100\t101\t102\t103\nGroups:\t7 8 \n"
          "CapInh:\t0000000000000000\nCapEff:\t0000000000000010\n");
    Write(root / "42/mountinfo",
          "60 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
          "77 60 0:45 / /data rw - fuse.upfs upfs:/s rw\n");
    Write(root / "42/fdinfo/0", "pos:\t0\nflags:\t02\nmnt_id:\t60\nino:\t9\n");
    Write(root / "42/fdinfo/3", "pos:\t0\nflags:\t01\nmnt_id:\t77\nino:\t17\n");
    Write(root / "42/fdinfo/4", "pos:\t0\nflags:\t01\nmnt_id:\t60\nino:\t18\n");
  }
  std::string root() const { return dir.path().string(); }
};

TEST_CASE("ProcFs maps threads to their process") {
  FakeProc fake;
  ProcFs proc(fake.root());
  CHECK(proc.ProcessOf(42) == std::optional<pid_t>(42));
  CHECK(proc.ProcessOf(43) == std::optional<pid_t>(42));
  CHECK_FALSE(proc.ProcessOf(44).has_value());
  CHECK_FALSE(proc.ProcessOf(0).has_value());
}

TEST_CASE("ProcFs reads a thread's capabilities and groups") {
  FakeProc fake;
  ProcFs proc(fake.root());
  std::optional<ThreadCredentials> c = proc.CredentialsOf(50);
  REQUIRE(c.has_value());
  CHECK(c->effective_caps == 0x10);  // CAP_FSETID alone
  CHECK(c->fsgid == 103);
  CHECK(c->groups == std::vector<uint32_t>{7, 8});
  CHECK_FALSE(proc.CredentialsOf(42).has_value());  // no CapEff line: don't know
  CHECK_FALSE(proc.CredentialsOf(44).has_value());
}

TEST_CASE("ProcFs finds a process's descriptors on this mount only") {
  FakeProc fake;
  ProcFs proc(fake.root());
  CHECK_FALSE(proc.HasOpen(42, 17).has_value());  // mount point not set yet
  REQUIRE(proc.SetMountPoint("/mnt/up"));
  CHECK(proc.HasOpen(42, 17) == std::optional<bool>(true));
  CHECK(proc.HasOpen(42, 18) == std::optional<bool>(false));  // other filesystem
  CHECK(proc.HasOpen(42, 9) == std::optional<bool>(false));
  CHECK_FALSE(proc.HasOpen(44, 17).has_value());  // no such process
  CHECK(proc.SetMountPoint("/mnt/with space"));
  CHECK_FALSE(proc.SetMountPoint("/mnt/none"));
}

TEST_CASE("ProcFs reads the real /proc") {
  ProcFs proc;
  CHECK(proc.ProcessOf(static_cast<pid_t>(getpid())) ==
        std::optional<pid_t>(static_cast<pid_t>(getpid())));
  // The root filesystem is mounted; this process has descriptors there
  // (or at least the question can be answered).
  REQUIRE(proc.SetMountPoint("/"));
  CHECK(proc.HasOpen(getpid(), 1).has_value());
  std::optional<ThreadCredentials> self = proc.CredentialsOf(static_cast<pid_t>(getpid()));
  REQUIRE(self.has_value());
  CHECK(self->fsgid == static_cast<uint32_t>(getegid()));
}

}  // namespace
}  // namespace upfs::fs
