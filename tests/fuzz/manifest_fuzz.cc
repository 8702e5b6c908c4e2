// libFuzzer target: session::ParseManifest, the parser of the bytes a
// client writes into `.finish`. Besides "no crash, no leak, no UB" (the
// sanitizers), every line it accepts must satisfy what the commit relies
// on: 64 lowercase hex digits, and a path that is relative, free of "..",
// ".", and empty components, and that SplitRelativePath accepts as is.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "session/manifest.h"
#include "tests/fuzz/fuzz_check.h"

using upfs::session::ManifestLine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = upfs::session::ParseManifest(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == upfs::Status::Code::kInvalidArgument);
    FUZZ_CHECK(!parsed.status().message().empty());
    return 0;
  }
  size_t expected_number = 0;
  for (const ManifestLine& line : *parsed) {
    FUZZ_CHECK(line.line_number == ++expected_number);
    FUZZ_CHECK(line.sha256.size() == 64);
    for (char c : line.sha256) FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    FUZZ_CHECK(!line.path.empty() && line.path.front() != '/' && line.path.back() != '/');
    auto parts = upfs::session::SplitRelativePath(line.path);
    FUZZ_CHECK(parts.ok());
    std::string joined;
    for (const std::string& part : *parts) {
      FUZZ_CHECK(!part.empty() && part != "." && part != "..");
      if (!joined.empty()) joined.push_back('/');
      joined += part;
    }
    FUZZ_CHECK(joined == line.path);  // already normal: "./" and "//" are gone
  }
  return 0;
}
