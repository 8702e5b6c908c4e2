// upfs(8) from its template: roff escaping, the placeholders, and the real
// template (fs/upfs.8.in) filled with every option and every errno.
#include "fs/man_page.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "fs/command_line.h"
#include "fs/errno_table.h"

namespace upfs::fs {
namespace {

constexpr const char* kAllPlaceholders =
    ".TH UPFS 8 \"\" \"upfs @VERSION@\"\n"
    "@OPTIONS upfs@\n@OPTIONS rados@\n@OPTIONS fuse@\n@ERRORS@\n";

TEST_CASE("RoffEscape: hyphens, backslashes and control characters at a line's start") {
  CHECK(RoffEscape("plain text") == "plain text");
  CHECK(RoffEscape("-o ttl=1, write-once") == "\\-o ttl=1, write\\-once");
  CHECK(RoffEscape("a\\b") == "a\\eb");
  CHECK(RoffEscape(".status") == "\\&.status");
  CHECK(RoffEscape("'quoted'") == "\\&'quoted'");
  CHECK(RoffEscape("one\n.two\n'three") == "one\n\\&.two\n\\&'three");
  CHECK(RoffEscape("a.b 'c'") == "a.b 'c'");
}

TEST_CASE("MakeManPage fills every placeholder with its table") {
  std::string page;
  REQUIRE(MakeManPage(kAllPlaceholders, "9.8.7", &page).ok());
  CHECK(page.find("\"upfs 9.8.7\"") != std::string::npos);
  CHECK(page.find('@') == std::string::npos);
  for (const OptionDoc& option : OptionTable()) {
    INFO(option.name);
    CHECK(page.find(RoffEscape(option.name)) != std::string::npos);
    CHECK(page.find(RoffEscape(option.description)) != std::string::npos);
  }
  CHECK(page.find(".TP\n\\fB\\-o ttl=\\fR\\fISECONDS\\fR\na session untouched") !=
        std::string::npos);
  CHECK(page.find("\\fBEBADMSG\\fR (" + std::string(std::strerror(EBADMSG)) + ")") !=
        std::string::npos);
  for (const ErrnoUse& use : DocumentedErrnos()) {
    INFO(use.errnum);
    CHECK(page.find("\\fB" + std::string(strerrorname_np(use.errnum)) + "\\fR") !=
          std::string::npos);
  }
}

TEST_CASE("MakeManPage refuses an unknown, repeated or missing placeholder") {
  std::string page = "unchanged";
  Status s = MakeManPage(std::string(kAllPlaceholders) + "@OPTIONS nfs@\n", "1", &page);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("line 6: @OPTIONS nfs@") != std::string::npos);
  s = MakeManPage(std::string(kAllPlaceholders) + "@ERRORS@\n", "1", &page);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("@ERRORS@") != std::string::npos);
  s = MakeManPage(".TH UPFS 8\n@ERRORS@\n", "1", &page);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("no line @OPTIONS") != std::string::npos);
  CHECK(page == "unchanged");
}

TEST_CASE("the template fs/upfs.8.in makes a page with every section") {
  std::ifstream in(UPFS_SOURCE_DIR "/fs/upfs.8.in");
  REQUIRE(in);
  std::ostringstream page_template;
  page_template << in.rdbuf();
  std::string page;
  REQUIRE(MakeManPage(page_template.str(), "1.2.3", &page).ok());
  for (const char* section :
       {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH \".status FIELDS\"",
        ".SH ERRORS", ".SH FILES", ".SH EXAMPLES", ".SH \"SEE ALSO\""}) {
    CHECK(page.find(std::string("\n") + section + "\n") != std::string::npos);
  }
  CHECK(page.find("\"upfs 1.2.3\"") != std::string::npos);
}

}  // namespace
}  // namespace upfs::fs
