// Catch2 assertions on a Status or a Result<T>: REQUIRE_OK and REQUIRE_CODE
// print the status's message when they fail, and report the caller's line.
// Status::Code prints by name in Catch2's messages.
#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "base/status.h"

namespace Catch {
template <>
struct StringMaker<upfs::Status::Code> {
  static std::string convert(upfs::Status::Code code) { return upfs::Status::CodeName(code); }
};
}  // namespace Catch

namespace upfs::testing {

// The status of a Status or of a Result, for the macros below.
inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

}  // namespace upfs::testing

// Checks that a Status or Result is OK, printing its message when not.
#define REQUIRE_OK(expr)                                             \
  do {                                                               \
    const ::upfs::Status upfs_st_ = ::upfs::testing::StatusOf(expr); \
    INFO(upfs_st_.ToString());                                       \
    REQUIRE(upfs_st_.ok());                                          \
  } while (0)

// Checks that a Status or Result failed with `expected` (a Status::Code
// enumerator name, e.g. kNotFound).
#define REQUIRE_CODE(expr, expected)                                 \
  do {                                                               \
    const ::upfs::Status upfs_st_ = ::upfs::testing::StatusOf(expr); \
    INFO(upfs_st_.ToString());                                       \
    REQUIRE(upfs_st_.code() == ::upfs::Status::Code::expected);      \
  } while (0)
