# tests/integration/mount_behaviours.cmake: mount-level behaviours
# (docs/configuration.md, "Other users and expiry"; G7), included from
# tests/integration/CMakeLists.txt:
#   expiry       a short ttl: idle sessions expire and the store shrinks;
#                open or recently written sessions and assets survive
#   other_users  -o allow_other: a second uid (nobody) against root's
#                sessions and assets, and the mount without allow_other
#   posix_details  times, setuid/setgid on write, link counts, atime vs. a
#                local directory (docs/semantics.md, "POSIX behaviour")
#   scale        1000 sessions and one session of 10 000 files; memory
#   log_reopen   SIGUSR1 reopens the log file (logrotate), the mount stays up
#   hooks        pre_commit refuses and accepts; post_commit delivered after
#                kill -9; a hostile session name through both
#   quota        -o quota under 8 parallel writers of one uid, -o max_sessions,
#                both across a restart; root exempt
#   asset_removal  rmdir assets/NAME with a reader open, kill -9 racing it,
#                owner or root only, rm -r and other tree walkers removing
#                assets whole, a lone rm refused, -o worm
#   metrics      -o metrics_file: counts after uploads and refusals, promtool
#                check metrics, replaced whole while read, written at unmount
#   resume       rsync --inplace --no-whole-file resumes after kill -9 of the
#                daemon; tools' leftovers left out of an empty-manifest commit
#   guard        lib.sh's guard: a test killed with -9 (ctest's TIMEOUT)
#                leaves no daemon, mount or directory behind
set(upfs_mount_behaviours expiry other_users posix_details scale log_reopen hooks quota asset_removal metrics resume guard)
foreach(name IN LISTS upfs_mount_behaviours)
  add_test(NAME integration.${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${name}.sh $<TARGET_FILE:upfs>)
endforeach()
list(TRANSFORM upfs_mount_behaviours PREPEND integration.)
set_tests_properties(${upfs_mount_behaviours} PROPERTIES
  LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77)
