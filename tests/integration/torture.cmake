# tests/integration/torture.cmake: the kill -9 torture test (G2, G4;
# docs/store.md, "Crashes"), included from tests/integration/CMakeLists.txt.
# The CI form: 20 kills (about a minute on a 2-core machine). The long
# form is documented in torture_kill9.sh: TORTURE_KILLS=200 (or more).
add_test(NAME integration.torture_kill9
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/torture_kill9.sh $<TARGET_FILE:upfs>)
set_tests_properties(integration.torture_kill9 PROPERTIES
  LABELS integration
  TIMEOUT 600
  SKIP_RETURN_CODE 77)
