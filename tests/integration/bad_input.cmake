# integration.bad_input: the bad-input catalogue (G4; docs/semantics.md,
# "Bad input, case by case") on a real mount (each
# case's errno read from the syscall by bad_input_try.py, the daemon alive
# after each, a control session written to throughout). Included from
# tests/integration/CMakeLists.txt.
add_test(NAME integration.bad_input
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bad_input.sh $<TARGET_FILE:upfs>)
set_tests_properties(integration.bad_input PROPERTIES
  LABELS integration
  TIMEOUT 300
  SKIP_RETURN_CODE 77)
