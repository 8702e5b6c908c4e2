#include "fs/man_page.h"

#include <cstring>
#include <map>

#include "fs/command_line.h"
#include "fs/errno_table.h"

namespace upfs::fs {
namespace {

// A table's text as a sentence of the page, ending in a period. Not
// capitalized: many start with a command or a value (mkdir, admin).
std::string Sentence(std::string_view text) {
  std::string sentence = RoffEscape(text);
  if (!sentence.empty() && sentence.back() != '.') sentence += '.';
  return sentence;
}

// One .TP entry per option of `group`: the spelling in bold, its argument
// in italics, then the description and the default.
std::string OptionEntries(OptionDoc::Group group) {
  std::string roff;
  for (const OptionDoc& option : OptionTable()) {
    if (option.group != group) continue;
    std::string spelled = OptionSpelling(option);
    spelled.resize(spelled.size() - option.argument.size());
    roff += ".TP\n\\fB" + RoffEscape(spelled) + "\\fR";
    if (!option.argument.empty()) roff += "\\fI" + RoffEscape(option.argument) + "\\fR";
    roff += "\n" + Sentence(option.description) + "\n";
    if (!option.default_value.empty()) roff += "Default: " + Sentence(option.default_value) + "\n";
  }
  return roff;
}

// One .TP entry per documented errno: its name, its message, and when.
std::string ErrnoEntries() {
  std::string roff;
  for (const ErrnoUse& use : DocumentedErrnos()) {
    const char* name = strerrorname_np(use.errnum);
    roff += ".TP\n\\fB" + RoffEscape(name != nullptr ? name : std::to_string(use.errnum)) +
            "\\fR (" + RoffEscape(std::strerror(use.errnum)) + ")\n" + Sentence(use.when) + "\n";
  }
  return roff;
}

}  // namespace

std::string RoffEscape(std::string_view text) {
  std::string roff;
  roff.reserve(text.size() + text.size() / 8);
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) roff += "\\&";
    if (c == '\\') {
      roff += "\\e";
    } else if (c == '-') {
      roff += "\\-";
    } else {
      roff += c;
    }
    line_start = c == '\n';
  }
  return roff;
}

Status MakeManPage(std::string_view page_template, std::string_view version, std::string* out) {
  std::map<std::string, std::string, std::less<>> fills = {
      {"@OPTIONS upfs@", OptionEntries(OptionDoc::Group::kUpfs)},
      {"@OPTIONS rados@", OptionEntries(OptionDoc::Group::kRados)},
      {"@OPTIONS fuse@", OptionEntries(OptionDoc::Group::kFuse)},
      {"@ERRORS@", ErrnoEntries()},
  };
  constexpr std::string_view kVersion = "@VERSION@";
  std::string page;
  size_t line_number = 0;
  std::string_view rest = page_template;
  while (!rest.empty()) {
    ++line_number;
    const size_t newline = rest.find('\n');
    std::string line(rest.substr(0, newline));
    rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    if (line.size() > 1 && line.front() == '@' && line.back() == '@' && line != kVersion) {
      auto fill = fills.find(line);
      if (fill == fills.end()) {
        return Status::InvalidArgument("line " + std::to_string(line_number) + ": " + line +
                                       " is not a placeholder, or was used before");
      }
      page += fill->second;
      fills.erase(fill);
      continue;
    }
    for (size_t at = line.find(kVersion); at != std::string::npos;
         at = line.find(kVersion, at + version.size())) {
      line.replace(at, kVersion.size(), version);
    }
    page += line;
    page += '\n';
  }
  if (!fills.empty()) {
    return Status::InvalidArgument("the template has no line " + fills.begin()->first);
  }
  *out = std::move(page);
  return Status::OK();
}

}  // namespace upfs::fs
