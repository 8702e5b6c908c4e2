// The metrics exposition (fs/metrics.h), its file (fs/metrics_file.h) and
// the request counters behind it (fs/request_counters.h).
#include "fs/metrics.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fs/metrics_file.h"
#include "fs/request_counters.h"
#include "tests/support/temp_dir.h"

namespace upfs::fs {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Sample lines by everything before the value: "name{labels}" -> value.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> samples;
  for (const std::string& line : Lines(text)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    samples[line.substr(0, space)] = line.substr(space + 1);
  }
  return samples;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

MetricsSnapshot SomeSnapshot() {
  MetricsSnapshot m;
  session::Engine::Stats& e = m.engine;
  e.open_sessions = 3;
  e.assets = 7;
  e.commits = 7;
  e.failed_finishes.assign(static_cast<size_t>(Status::Code::kQuotaExceeded) + 1, 0);
  e.failed_finishes[static_cast<size_t>(Status::Code::kHashMismatch)] = 2;
  e.failed_finishes[static_cast<size_t>(Status::Code::kNotPermitted)] = 1;
  e.bytes_received = 123456789;
  e.bytes_committed = 100000000;
  e.finish_buckets.assign(std::size(session::Engine::kFinishBuckets) + 1, 0);
  e.finish_buckets[0] = 4;      // <= 1 ms
  e.finish_buckets[3] = 3;      // (5 ms, 10 ms]
  e.finish_buckets.back() = 3;  // beyond 60 s
  e.finish_seconds_sum = 200.5;
  e.quota_refusals = 5;
  e.pre_commit_runs = 9;
  e.pre_commit_refusals = 1;
  e.post_commit_runs = 8;
  e.post_commit_failures = 1;
  RequestCounters counters;
  for (int i = 0; i < 10; ++i) counters.Count(FuseOp::kWrite);
  counters.Count(FuseOp::kLookup);
  counters.CountError(FuseOp::kLookup, ENOENT);
  counters.CountError(FuseOp::kWrite, EDQUOT);
  counters.CountError(FuseOp::kWrite, EDQUOT);
  counters.CountError(FuseOp::kFlush, EBADMSG);
  m.requests = counters.Take();
  m.space = store::Space{1000000, 400000};
  return m;
}

TEST_CASE("metrics: label values and help texts are escaped as the text format says", "[metrics]") {
  CHECK(EscapeLabelValue(R"(plain)") == "plain");
  CHECK(EscapeLabelValue("a\\b\"c\nd") == R"(a\\b\"c\nd)");
  CHECK(EscapeHelp("a\\b\"c\nd") == R"(a\\b"c\nd)");
}

TEST_CASE(
    "metrics: every family has HELP and TYPE before its samples, upfs_ names, counters end in "
    "_total",
    "[metrics]") {
  const std::string text = RenderMetrics(SomeSnapshot());
  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helped;
  for (const std::string& line : Lines(text)) {
    INFO(line);
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(helped.insert(name).second);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const std::string name = rest.substr(0, rest.find(' '));
      const std::string type = rest.substr(rest.find(' ') + 1);
      CHECK(helped.count(name) == 1);
      CHECK(types.emplace(name, type).second);
      CHECK(name.rfind("upfs_", 0) == 0);
      if (type == "counter") CHECK(name.size() > 6);
      if (type == "counter") CHECK(name.substr(name.size() - 6) == "_total");
      continue;
    }
    REQUIRE(line[0] != '#');
    std::string name = line.substr(0, line.find_first_of("{ "));
    // A histogram's samples belong to its family.
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (!types.count(name) && name.size() > s.size() &&
          name.substr(name.size() - s.size()) == s) {
        const std::string family = name.substr(0, name.size() - s.size());
        if (types.count(family) && types[family] == "histogram") name = family;
      }
    }
    CHECK(types.count(name) == 1);
  }
  CHECK(types.at("upfs_finish_duration_seconds") == "histogram");
  CHECK(types.at("upfs_open_sessions") == "gauge");
  CHECK(text.back() == '\n');
}

TEST_CASE("metrics: the values, labelled by reason, op, errno and hook", "[metrics]") {
  const auto samples = Samples(RenderMetrics(SomeSnapshot()));
  CHECK(samples.at("upfs_open_sessions") == "3");
  CHECK(samples.at("upfs_assets") == "7");
  CHECK(samples.at("upfs_commits_total") == "7");
  CHECK(samples.at(R"(upfs_finish_failures_total{reason="hash_mismatch"})") == "2");
  CHECK(samples.at(R"(upfs_finish_failures_total{reason="not_permitted"})") == "1");
  CHECK(samples.at(R"(upfs_finish_failures_total{reason="missing_data"})") == "0");
  CHECK(samples.count(R"(upfs_finish_failures_total{reason="ok"})") == 0);
  CHECK(samples.at("upfs_received_bytes_total") == "123456789");
  CHECK(samples.at("upfs_committed_bytes_total") == "100000000");
  CHECK(samples.at(R"(upfs_fuse_requests_total{op="write"})") == "10");
  CHECK(samples.at(R"(upfs_fuse_requests_total{op="lookup"})") == "1");
  CHECK(samples.at(R"(upfs_fuse_requests_total{op="removexattr"})") == "0");
  CHECK(samples.at(R"(upfs_fuse_errors_total{op="lookup",errno="ENOENT"})") == "1");
  CHECK(samples.at(R"(upfs_fuse_errors_total{op="write",errno="EDQUOT"})") == "2");
  CHECK(samples.at(R"(upfs_fuse_errors_total{op="flush",errno="EBADMSG"})") == "1");
  CHECK(samples.count(R"(upfs_fuse_errors_total{op="read",errno="ENOENT"})") == 0);
  CHECK(samples.at("upfs_store_size_bytes") == "1000000");
  CHECK(samples.at("upfs_store_free_bytes") == "400000");
  CHECK(samples.at("upfs_quota_refusals_total") == "5");
  CHECK(samples.at(R"(upfs_hook_runs_total{hook="pre_commit"})") == "9");
  CHECK(samples.at(R"(upfs_hook_failures_total{hook="pre_commit"})") == "1");
  CHECK(samples.at(R"(upfs_hook_runs_total{hook="post_commit"})") == "8");
  CHECK(samples.at(R"(upfs_hook_failures_total{hook="post_commit"})") == "1");

  MetricsSnapshot no_space = SomeSnapshot();
  no_space.space.reset();
  const std::string text = RenderMetrics(no_space);
  CHECK(text.find("upfs_store_size_bytes") == std::string::npos);
  CHECK(text.find("upfs_store_free_bytes") == std::string::npos);
}

TEST_CASE("metrics: the finish histogram's buckets are cumulative and end at +Inf with the count",
          "[metrics]") {
  const auto samples = Samples(RenderMetrics(SomeSnapshot()));
  const auto bucket = [&](const std::string& le) {
    return samples.at("upfs_finish_duration_seconds_bucket{le=\"" + le + "\"}");
  };
  CHECK(bucket("0.001") == "4");
  CHECK(bucket("0.0025") == "4");
  CHECK(bucket("0.005") == "4");
  CHECK(bucket("0.01") == "7");
  CHECK(bucket("1") == "7");
  CHECK(bucket("60") == "7");
  CHECK(bucket("+Inf") == "10");
  CHECK(samples.at("upfs_finish_duration_seconds_count") == "10");
  CHECK(samples.at("upfs_finish_duration_seconds_sum") == "200.5");
  // One bucket per bound, and +Inf.
  size_t buckets = 0;
  for (const auto& [key, value] : samples)
    buckets += key.rfind("upfs_finish_duration_seconds_bucket", 0) == 0;
  CHECK(buckets == std::size(session::Engine::kFinishBuckets) + 1);
}

TEST_CASE("metrics: every Status code has a reason label of its own", "[metrics]") {
  std::set<std::string> seen;
  for (int code = 0; code <= static_cast<int>(Status::Code::kQuotaExceeded); ++code) {
    const std::string reason = FinishFailureReason(static_cast<Status::Code>(code));
    INFO(code << " " << reason);
    CHECK(reason != "unknown");
    CHECK(reason.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
    CHECK(seen.insert(reason).second);
  }
  CHECK(std::string(FinishFailureReason(Status::Code::kHashMismatch)) == "hash_mismatch");
}

TEST_CASE("request counters: an errno beyond the table is counted as other", "[metrics]") {
  RequestCounters counters;
  counters.CountError(FuseOp::kRead, 100000);
  counters.CountError(FuseOp::kRead, -1);
  const RequestCounters::Snapshot s = counters.Take();
  REQUIRE(s.errors.size() == 1);
  CHECK(s.errors[0].op == FuseOp::kRead);
  CHECK(s.errors[0].err == RequestCounters::kOtherErrno);
  CHECK(s.errors[0].count == 2);
  CHECK(Samples(RenderMetrics({{}, s, {}}))
            .at(R"(upfs_fuse_errors_total{op="read",errno="other"})") == "2");
}

TEST_CASE("metrics file: replaced whole, no temporary left, and a failure changes nothing",
          "[metrics]") {
  upfs::testing::TempDir dir;
  const std::string path = dir.Sub("upfs.prom");
  int renders = 0;
  MetricsFile file(path, [&renders] { return "upfs_x " + std::to_string(++renders) + "\n"; });
  file.Update();
  CHECK(ReadFile(path) == "upfs_x 1\n");
  file.Update();
  CHECK(ReadFile(path) == "upfs_x 2\n");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);

  // The directory is gone: an IOError naming the path, nothing thrown.
  MetricsFile lost(dir.Sub("missing/upfs.prom"), [] { return std::string("upfs_x 1\n"); });
  const Status st = lost.Replace("upfs_x 1\n");
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message().find("missing/upfs.prom") != std::string::npos);
  lost.Update();  // logged, not thrown
  CHECK(!std::filesystem::exists(dir.Sub("missing")));
  CHECK(ReadFile(path) == "upfs_x 2\n");
}

}  // namespace
}  // namespace upfs::fs
