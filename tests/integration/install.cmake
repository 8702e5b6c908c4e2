# integration.install: `cmake --install` of this build tree into a
# temporary prefix, then mount(8) from it: `mount -t fuse.upfs` and an
# fstab line (docs/configuration.md, "Install"). The script gets the build directory to
# install from. Needs root; skipped without it unless CI=true. Included
# from tests/integration/CMakeLists.txt.
add_test(NAME integration.install
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install.sh $<TARGET_FILE:upfs> ${CMAKE_BINARY_DIR})
set_tests_properties(integration.install PROPERTIES
  LABELS integration
  TIMEOUT 300
  SKIP_RETURN_CODE 77)
