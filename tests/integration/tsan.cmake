# tests/integration/tsan.cmake: the label `tsan` marks the integration
# tests that .ci/run's ThreadSanitizer stage mounts the TSan-built daemon
# for (`ctest -L tsan`): those where the daemon serves requests from several
# threads on the same or neighbouring state at once. Included from
# tests/integration/CMakeLists.txt after every other test file.
#
#   e2e_parallel_chunks  13 parallel dd writers into one file, 4 sessions at once
#   sparse_interleave    two sessions written chunk by chunk, interleaved
#   visibility           a second process walks assets/ while sessions commit
#   bad_input            error paths while a control session is written to
#   other_users          several uids against the same sessions and assets
#   expiry               the sweeper thread against open, writing and idle sessions
#   exerciser_fio        parallel fio jobs: own files, one shared file, 3 sessions
#   exerciser_stress_ng  stress-ng --hdd workers in one session
#   exerciser_dbench     dbench clients (create, rename, unlink, lock)
#
# Under TSan they take about 100 s one after the other on 2 cores (each 1-22
# s). Left out (each alone 50-125 s under TSan, and single-writer or
# restart-bound): scale, enospc, bounded_memory, torture_kill9; and the
# sequential scenarios (many_sessions, write_once, real_clients, failures,
# fsck). All of them pass under TSan by hand (docs/development.md,
# "Sanitizer builds").
set(upfs_tsan_integration_tests
  e2e_parallel_chunks sparse_interleave visibility bad_input other_users expiry
  exerciser_fio exerciser_stress_ng exerciser_dbench)
list(TRANSFORM upfs_tsan_integration_tests PREPEND integration.)
set_property(TEST ${upfs_tsan_integration_tests} APPEND PROPERTY LABELS tsan)
