# integration.fsck: `upfs fsck` on a real store, with upfs_corrupt
# (tests/fsck/) damaging it. Included from tests/integration/CMakeLists.txt.
add_test(NAME integration.fsck
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/fsck.sh $<TARGET_FILE:upfs> $<TARGET_FILE:upfs_corrupt>)
set_tests_properties(integration.fsck PROPERTIES
  LABELS integration
  TIMEOUT 300
  SKIP_RETURN_CODE 77)
