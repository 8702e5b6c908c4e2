# tests/integration/rados.cmake: the integration scripts again over a RADOS
# store (docs/rados.md), as rados.integration.NAME, label `rados`: the same
# script with UPFS_TEST_STORE=rados, which makes lib.sh start a throw-away
# Ceph cluster for the script (tests/integration/rados_store.sh) and mount
# rados://upfs_it/NAMESPACE. Included from tests/integration/CMakeLists.txt.
#
# Every test that starts a cluster (these, rados.smoke, rados.store,
# rados.mount, the fault tests) holds the resource lock `ceph_cluster`, so
# `ctest -j2` never runs two clusters at once on a 2-core machine.
#
#   e2e_parallel_chunks  parallel dd chunks into stripe objects, 4 sessions at once
#   many_sessions        100 x (mkdir, write, finish, cmp): per-request latency
#   sparse_interleave    two sessions written chunk by chunk, interleaved
#   write_once           rewrites compared against the stored bytes
#   real_clients         cp, cp -a, rsync, tar, gio, mv
#   failures             every errno of a refused finish, .status
#   visibility           a second process never sees a partial session
#   torture_kill9        kill -9 at random points (20 rounds), and the
#                        crash between objects of a multi-object commit
#   expiry               the sweeper; the freed bytes leave the stripe objects
#   other_users          several uids against the same sessions and assets
#   bad_input            every refused request, with a control session beside
#   posix_details        POSIX corners inside a session
#   hooks                pre_commit and post_commit; notices across kill -9
#   quota                per-user limits under parallel writers, across a restart
#   asset_removal        removal with a reader open and racing kill -9; stripes freed
#   metrics              -o metrics_file: counts, promtool, atomic replacement
#   resume               rsync resumes after kill -9; leftovers left out of a commit
#   exerciser_fio, exerciser_stress_ng, exerciser_dbench
#                        the third-party exercisers; `upfs fsck rados://...` after
# Not here: fsck and enospc (they damage or fill a store directory;
# rados.faults.damaged is fsck's counterpart), scale, bounded_memory and
# requests_per_file (measurements of the daemon, not of the store).
set(upfs_rados_integration_tests
  e2e_parallel_chunks many_sessions sparse_interleave write_once real_clients failures visibility
  torture_kill9 expiry other_users bad_input posix_details hooks quota asset_removal metrics resume
  exerciser_fio exerciser_stress_ng exerciser_dbench)
foreach(name IN LISTS upfs_rados_integration_tests)
  add_test(NAME rados.integration.${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${name}.sh $<TARGET_FILE:upfs>)
  set_tests_properties(rados.integration.${name} PROPERTIES
    LABELS rados
    ENVIRONMENT UPFS_TEST_STORE=rados
    RESOURCE_LOCK ceph_cluster
    TIMEOUT 600
    SKIP_RETURN_CODE 77)
endforeach()

# The RADOS-only fault tests, through a mount (each starts its own cluster):
#   damaged      stripe object bytes overwritten: EIO on read, fsck names the file
#   unreachable  every OSD paused (SIGSTOP) with rados_timeout=3: EIO within a
#                bound, the daemon stays up, uploads again after SIGCONT
#   osd_lost     SIGKILL of one OSD of a size-3 pool mid-copy: copy and finish succeed
#   quota        a 40 MB pool quota: a 100 MB copy gets ENOSPC, finish and abort work
foreach(name IN ITEMS damaged unreachable osd_lost quota)
  add_test(NAME rados.faults.${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/rados_${name}.sh $<TARGET_FILE:upfs>)
  set_tests_properties(rados.faults.${name} PROPERTIES
    LABELS rados
    RESOURCE_LOCK ceph_cluster
    TIMEOUT 300
    SKIP_RETURN_CODE 77)
endforeach()

# Several mounts of one store (docs/rados.md, "Several mounts"; G8), label `multi`:
#   namespace  mkdir races across mounts, one holder per session (EBUSY
#              elsewhere), commits seen on every mount (listing delay), 4
#              mounts x 25 parallel commits, a poller never sees part of one
#   failover   kill -9 of the holder (takeover), a paused holder fenced
#              (SIGSTOP past its lease), expiry and abort with two mounts,
#              removed files kept for readers on any mount (read whole, freed
#              by the last reader's close) outlive another mount's start, and
#              are freed by a live mount once their readers' mount died
foreach(name IN ITEMS namespace failover)
  add_test(NAME multi.${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/multi_${name}.sh $<TARGET_FILE:upfs>)
  set_tests_properties(multi.${name} PROPERTIES
    LABELS "multi;rados"
    RESOURCE_LOCK ceph_cluster
    TIMEOUT 600
    SKIP_RETURN_CODE 77)
endforeach()
