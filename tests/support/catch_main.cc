// The main() of every Catch2 test binary.
//
// GCC 12 with -fsanitize=address reports -Wmaybe-uninitialized inside
// libstdc++'s <regex>, which catch.hpp's main pulls in; the warning is a
// known false positive (GCC bug 105562) and would break -Werror builds.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
