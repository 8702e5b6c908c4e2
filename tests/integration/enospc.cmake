# integration.enospc: a full store on a size-limited tmpfs (docs/store.md,
# "A full disk, and damaged data"; G4). Needs root for mount -t tmpfs (skipped without).
# Included from tests/integration/CMakeLists.txt.
add_test(NAME integration.enospc
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/enospc.sh $<TARGET_FILE:upfs>)
set_tests_properties(integration.enospc PROPERTIES
  LABELS integration
  TIMEOUT 300
  SKIP_RETURN_CODE 77)
