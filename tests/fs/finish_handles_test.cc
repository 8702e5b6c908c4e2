// FinishHandles: which flush of a .finish commits, for the ways clients
// actually close it (the process table is faked).
#include "fs/finish_handles.h"

#include <map>
#include <set>
#include <utility>

#include <catch2/catch.hpp>

namespace upfs::fs {
namespace {

constexpr uint64_t kIno = 17;
using Flush = FinishHandles::Flush;

// Threads map to processes; each process holds some set of inodes open.
class FakeProcesses : public ProcessView {
 public:
  std::optional<pid_t> ProcessOf(pid_t tid) const override {
    auto it = process_of.find(tid);
    if (it == process_of.end()) return std::nullopt;
    return it->second;
  }
  std::optional<bool> HasOpen(pid_t pid, uint64_t ino) const override {
    if (unreadable.count(pid)) return std::nullopt;
    return open.count({pid, ino}) > 0;
  }
  std::map<pid_t, pid_t> process_of;
  std::set<std::pair<pid_t, uint64_t>> open;
  std::set<pid_t> unreadable;
};

TEST_CASE("a redirection's early close does not commit: the writer's close does") {
  // sh (100) forks a child (200) that opens .finish, dup2()s it onto 1
  // and closes the original, then execs the command, which writes and
  // exits.
  FakeProcesses procs;
  procs.process_of = {{200, 200}};
  FinishHandles handles(&procs);
  handles.Opened(10, kIno, 200);
  procs.open.insert({200, kIno});  // fd 1 still holds it
  CHECK(handles.OnFlush(10, 200) == Flush::kWait);
  handles.Wrote(10);
  procs.open.clear();
  CHECK(handles.OnFlush(10, 200) == Flush::kCommit);
  CHECK(handles.OnFlush(10, 200) == Flush::kRepeat);  // the engine answers again
  CHECK(handles.Released(10));
}

TEST_CASE("a child's close after the manifest is written commits, though the opener holds it") {
  // (cd src && sha256sum *) > .finish: the subshell (300) opens; sha256sum
  // (301) inherits, writes, exits.
  FakeProcesses procs;
  procs.process_of = {{300, 300}, {301, 301}};
  procs.open = {{300, kIno}, {301, kIno}};
  FinishHandles handles(&procs);
  handles.Opened(11, kIno, 300);
  CHECK(handles.OnFlush(11, 300) == Flush::kWait);  // the subshell's dup2
  handles.Wrote(11);
  CHECK(handles.OnFlush(11, 301) == Flush::kCommit);
}

TEST_CASE("an empty manifest commits at the opener's last close") {
  // touch: open, dup2 onto 0, close (flush), futimens, close (flush).
  FakeProcesses procs;
  procs.process_of = {{400, 400}, {401, 400}};  // 401: another thread of 400
  FinishHandles handles(&procs);
  handles.Opened(12, kIno, 400);
  procs.open.insert({400, kIno});
  CHECK(handles.OnFlush(12, 400) == Flush::kWait);
  procs.open.clear();
  CHECK(handles.OnFlush(12, 401) == Flush::kCommit);
}

TEST_CASE("a pipeline member's dup2 over the inherited copy does not commit") {
  // (a | b) > .finish: the subshell (500) opens; a (501) dup2()s the pipe
  // over its copy before anything is written.
  FakeProcesses procs;
  procs.process_of = {{500, 500}, {501, 501}};
  procs.open = {{500, kIno}};
  FinishHandles handles(&procs);
  handles.Opened(13, kIno, 500);
  CHECK(handles.OnFlush(13, 501) == Flush::kWait);
}

TEST_CASE("when /proc cannot tell, an empty manifest waits for release") {
  FakeProcesses procs;
  procs.process_of = {{600, 600}};
  procs.unreadable = {600};
  FinishHandles handles(&procs);
  handles.Opened(14, kIno, 600);
  CHECK(handles.OnFlush(14, 600) == Flush::kWait);
  CHECK(handles.OnFlush(14, 999) == Flush::kWait);  // a thread /proc does not know

  FinishHandles blind(nullptr);
  blind.Opened(15, kIno, 600);
  CHECK(blind.OnFlush(15, 600) == Flush::kWait);
  blind.Wrote(15);
  CHECK(blind.OnFlush(15, 600) == Flush::kCommit);
}

TEST_CASE("handles that are not .finish always flush, and writes to them are ignored") {
  FinishHandles handles(nullptr);
  handles.Wrote(99);
  CHECK(handles.OnFlush(99, 1) == Flush::kCommit);
  handles.Opened(16, kIno, 1);
  handles.Wrote(99);
  CHECK(handles.OnFlush(99, 1) == Flush::kCommit);
  CHECK(handles.OnFlush(16, 1) == Flush::kWait);
  CHECK_FALSE(handles.Released(16));  // no commit ran: release runs it
  CHECK_FALSE(handles.Released(16));  // idempotent
  CHECK(handles.OnFlush(16, 1) == Flush::kCommit);
}

}  // namespace
}  // namespace upfs::fs
