// upfs_man TEMPLATE OUTPUT VERSION: writes the man page upfs(8) from its
// template (fs/man_page.h). Run by the build (fs/CMakeLists.txt); not
// installed.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "fs/man_page.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: upfs_man TEMPLATE OUTPUT VERSION\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::ostringstream page_template;
  page_template << in.rdbuf();
  if (!in) {
    std::fprintf(stderr, "upfs_man: cannot read %s\n", argv[1]);
    return 1;
  }
  std::string page;
  const upfs::Status made = upfs::fs::MakeManPage(page_template.str(), argv[3], &page);
  if (!made.ok()) {
    std::fprintf(stderr, "upfs_man: %s: %s\n", argv[1], made.message().c_str());
    return 1;
  }
  std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
  out << page;
  out.close();
  if (!out) {
    std::fprintf(stderr, "upfs_man: cannot write %s\n", argv[2]);
    std::remove(argv[2]);
    return 1;
  }
  return 0;
}
