# tests/integration/exercisers.cmake: third-party exercisers against a
# mounted session (G3, G4 in docs/semantics.md): fio, stress-ng --hdd, dbench. Included from
# tests/integration/CMakeLists.txt. These are the fast forms (each well
# under a minute); UPFS_EXERCISE_LONG=1 selects the long forms
# (docs/development.md, "Third-party exercisers").
foreach(name IN ITEMS fio stress_ng dbench)
  add_test(NAME integration.exerciser_${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/exerciser_${name}.sh $<TARGET_FILE:upfs>)
  set_tests_properties(integration.exerciser_${name} PROPERTIES
    LABELS integration
    TIMEOUT 600
    SKIP_RETURN_CODE 77)
endforeach()
