// `upfs fsck [--remove-orphans] STORE_DIR`, or `upfs fsck [--remove-orphans]
// [-o ceph_conf=..,ceph_id=..,rados_timeout=..] rados://POOL[/NAMESPACE]`:
// the offline integrity check of a store (store/fsck.h) as a subcommand of
// the upfs program.
//
// Opens the store read-mostly and offline: LevelDB's lock refuses a store
// a running daemon holds (a RADOS store has no such lock: unmount it
// first), and the check never creates a store. Prints one
// line per problem on stdout ("asset NAME file PATH offset N: KIND:
// MESSAGE"), then a summary line.
//
// Exit status: 0 the store is clean (or every problem found was an orphan
// and was removed); 1 problems remain; 2 usage error, or the store could
// not be opened (missing, not a upfs store, in use, unreadable).
//
// Thread safety: a whole program's worth of work; call from main only.
#pragma once

namespace upfs::fs {

inline constexpr int kFsckClean = 0;
inline constexpr int kFsckProblems = 1;
inline constexpr int kFsckUsage = 2;

// `argv` as main() received it: argv[0] is the program, argv[1] "fsck".
int RunFsck(int argc, char** argv);

}  // namespace upfs::fs
