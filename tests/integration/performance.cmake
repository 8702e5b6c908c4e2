# G5 (docs/semantics.md): the daemon's memory stays bounded. The benchmark
# itself (tests/bench/bench.sh) is not a test. Included from
# tests/integration/CMakeLists.txt.
add_test(NAME integration.bounded_memory
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bounded_memory.sh $<TARGET_FILE:upfs>)
set_tests_properties(integration.bounded_memory PROPERTIES
  LABELS integration
  TIMEOUT 300
  SKIP_RETURN_CODE 77)

# The FUSE requests per uploaded small file (docs/performance.md, (e)), and which closes
# skip FLUSH (counted from the daemon's debug log; no timing).
add_test(NAME integration.requests_per_file
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/requests_per_file.sh $<TARGET_FILE:upfs>)
set_tests_properties(integration.requests_per_file PROPERTIES
  LABELS integration
  TIMEOUT 120
  SKIP_RETURN_CODE 77)
