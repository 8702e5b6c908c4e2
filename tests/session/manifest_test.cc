// ParseManifest: what sha256sum prints is accepted, anything else is
// refused with the line that is wrong.
#include "session/manifest.h"

#include <string>

#include <catch2/catch.hpp>

namespace upfs::session {
namespace {

const std::string kHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("manifest: sha256sum's text, binary and escaped forms parse", "[manifest]") {
  std::string upper = kHash;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto lines = ParseManifest(kHash + "  a\n" + upper + " *dir/./b c\n" + "\\" + kHash +
                             "  x\\\\y\\nz\\r\n" + kHash + "  last-without-newline");
  INFO(lines.status().ToString());
  REQUIRE(lines.ok());
  REQUIRE(lines->size() == 4);
  REQUIRE((*lines)[0].path == "a");
  REQUIRE((*lines)[0].sha256 == kHash);
  REQUIRE((*lines)[0].line_number == 1);
  REQUIRE((*lines)[1].path == "dir/b c");
  REQUIRE((*lines)[1].sha256 == kHash);  // stored lower case
  REQUIRE((*lines)[2].path == "x\\y\nz\r");
  REQUIRE((*lines)[3].path == "last-without-newline");
  REQUIRE((*lines)[3].line_number == 4);
  auto empty = ParseManifest("");
  REQUIRE(empty.ok());
  REQUIRE(empty->empty());
}

TEST_CASE("manifest: malformed lines are refused, naming the line", "[manifest]") {
  auto [text, why] = GENERATE(table<std::string, std::string>({
      {"  a\n", "no hash"},
      {kHash.substr(1) + "  a\n", "63 hex digits"},
      {kHash + "0  a\n", "65 hex digits"},
      {"g" + kHash.substr(1) + "  a\n", "a non-hex digit"},
      {kHash + " a\n", "one space"},
      {kHash + "\ta\n", "a tab"},
      {kHash + "  \n", "no path"},
      {kHash + "  /etc/passwd\n", "an absolute path"},
      {kHash + "  ../a\n", "a parent reference"},
      {kHash + "  a/../../b\n", "a parent reference inside"},
      {kHash + "  a//b\n", "an empty component"},
      {kHash + "  .\n", "a path naming no file"},
      {kHash + "  a\r\n", "CRLF"},
      {"\n", "an empty line"},
      {"\\" + kHash + "  a\\qb\n", "an unknown escape"},
      {"\\" + kHash + "  a\\\n", "a lone backslash"},
  }));
  CAPTURE(why);
  std::string manifest = kHash + "  fine\n" + text;
  auto lines = ParseManifest(manifest);
  REQUIRE(!lines.ok());
  REQUIRE(lines.status().code() == Status::Code::kInvalidArgument);
  CAPTURE(lines.status().message());
  REQUIRE(lines.status().message().find("line 2") != std::string::npos);
}

}  // namespace upfs::session
