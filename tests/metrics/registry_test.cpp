// The metrics registry against the Prometheus text exposition format 0.0.4: exact output for a
// small registry (written by hand from the format description), escaping, refused names,
// histogram buckets, and counters incremented from several threads.
#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>

#include "core/error.h"

namespace moeflow::metrics {
namespace {

TEST(MetricsRegistry, WritesTheTextFormatExactly) {
  Registry r;
  r.counter("moeflow_requests_total", "Requests served.", {{"route", "/v1/chat"}, {"code", "200"}})
      .add(3);
  r.counter("moeflow_requests_total", "Requests served.", {{"code", "500"}, {"route", "/v1/chat"}})
      .inc();
  r.gauge("moeflow_tokens_in_flight", "Tokens in flight.").set(12.5);
  Histogram& h = r.histogram("moeflow_decode_step_seconds", "Decode step latency.", {0.25, 0.5, 1},
                             {{"node", "a"}});
  for (double v : {0.125, 0.25, 0.75, 2.0}) h.observe(v);

  EXPECT_EQ(r.exposition(),
            "# HELP moeflow_decode_step_seconds Decode step latency.\n"
            "# TYPE moeflow_decode_step_seconds histogram\n"
            "moeflow_decode_step_seconds_bucket{node=\"a\",le=\"0.25\"} 2\n"
            "moeflow_decode_step_seconds_bucket{node=\"a\",le=\"0.5\"} 2\n"
            "moeflow_decode_step_seconds_bucket{node=\"a\",le=\"1\"} 3\n"
            "moeflow_decode_step_seconds_bucket{node=\"a\",le=\"+Inf\"} 4\n"
            "moeflow_decode_step_seconds_sum{node=\"a\"} 3.125\n"
            "moeflow_decode_step_seconds_count{node=\"a\"} 4\n"
            "# HELP moeflow_requests_total Requests served.\n"
            "# TYPE moeflow_requests_total counter\n"
            "moeflow_requests_total{code=\"200\",route=\"/v1/chat\"} 3\n"
            "moeflow_requests_total{code=\"500\",route=\"/v1/chat\"} 1\n"
            "# HELP moeflow_tokens_in_flight Tokens in flight.\n"
            "# TYPE moeflow_tokens_in_flight gauge\n"
            "moeflow_tokens_in_flight 12.5\n");
}

TEST(MetricsRegistry, SameNameAndLabelsGiveTheSameSeries) {
  Registry r;
  Counter& a = r.counter("moeflow_tokens_total", "Tokens.", {{"layer", "0"}});
  Counter& b = r.counter("moeflow_tokens_total", "Tokens.", {{"layer", "0"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.counter("moeflow_tokens_total", "Tokens.", {{"layer", "1"}}));
}

TEST(MetricsRegistry, HiddenSeriesLeaveTheOutputUntilAskedForAgain) {
  Registry r;
  Gauge& up_a = r.gauge("moeflow_peer_up", "Up.", {{"peer", "a"}});
  r.gauge("moeflow_peer_up", "Up.", {{"peer", "b"}}).set(1);
  r.counter("moeflow_link_bytes_total", "Bytes.", {{"peer", "a"}, {"channel", "data"}}).add(5);
  r.hide("moeflow_peer_up", {{"peer", "a"}});
  r.hide("moeflow_link_bytes_total", {{"peer", "a"}});
  r.hide("moeflow_no_such_metric", {});
  up_a.set(1);  // the reference stays valid
  EXPECT_EQ(r.exposition(),
            "# HELP moeflow_link_bytes_total Bytes.\n"
            "# TYPE moeflow_link_bytes_total counter\n"
            "# HELP moeflow_peer_up Up.\n"
            "# TYPE moeflow_peer_up gauge\n"
            "moeflow_peer_up{peer=\"b\"} 1\n");
  EXPECT_EQ(&r.gauge("moeflow_peer_up", "Up.", {{"peer", "a"}}), &up_a);
  EXPECT_NE(r.exposition().find("moeflow_peer_up{peer=\"a\"} 1\n"), std::string::npos);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_help("back\\slash \"quoted\"\nline"), "back\\\\slash \"quoted\"\\nline");

  Registry r;
  r.gauge("moeflow_model_info", "Model\nloaded.", {{"path", "C:\\m\"x\"\n"}}).set(1);
  EXPECT_EQ(r.exposition(),
            "# HELP moeflow_model_info Model\\nloaded.\n"
            "# TYPE moeflow_model_info gauge\n"
            "moeflow_model_info{path=\"C:\\\\m\\\"x\\\"\\n\"} 1\n");
}

TEST(MetricsRegistry, FormatsSpecialValues) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(-2.5), "-2.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsRegistry, RefusesBadNames) {
  Registry r;
  EXPECT_THROW(r.gauge("", "h"), Error);
  EXPECT_THROW(r.gauge("1moeflow", "h"), Error);
  EXPECT_THROW(r.gauge("moeflow-bytes", "h"), Error);
  EXPECT_THROW(r.gauge("moeflow:rate", "h"), Error);        // colons are for recording rules
  EXPECT_THROW(r.counter("moeflow_requests", "h"), Error);  // counters end in _total
  EXPECT_THROW(r.gauge("moeflow_requests_total", "h"), Error);
  EXPECT_THROW(r.histogram("moeflow_latency_count", "h", {1}), Error);
  EXPECT_THROW(r.gauge("moeflow_bytes", "h", {{"bad-label", "x"}}), Error);
  EXPECT_THROW(r.gauge("moeflow_bytes", "h", {{"__reserved", "x"}}), Error);
  EXPECT_THROW(r.gauge("moeflow_bytes", "h", {{"0layer", "x"}}), Error);
  EXPECT_THROW(r.histogram("moeflow_latency_seconds", "h", {1}, {{"le", "1"}}), Error);
  EXPECT_THROW(r.histogram("moeflow_latency_seconds", "h", {1, 1}), Error);
  EXPECT_THROW(r.histogram("moeflow_latency_seconds", "h", {2, 1}), Error);
  EXPECT_NO_THROW(r.gauge("moeflow_bytes", "h", {{"_layer0", "x"}}));
  EXPECT_THROW(r.counter("moeflow_bytes_total", "h").add(-1), Error);
  // One name, one type, one help text, one bucket layout.
  EXPECT_THROW(r.gauge("moeflow_bytes", "other help"), Error);
  r.histogram("moeflow_step_seconds", "h", {1, 2});
  EXPECT_THROW(r.histogram("moeflow_step_seconds", "h", {1, 3}), Error);
  EXPECT_EQ(r.exposition().find("moeflow_latency"), std::string::npos);
}

TEST(MetricsRegistry, HistogramBucketsAreCumulative) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 100.0}) h.observe(v);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 6, 8}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_DOUBLE_EQ(s.sum, 117.0);

  Histogram only_inf({});
  only_inf.observe(3);
  EXPECT_EQ(only_inf.snapshot().cumulative, (std::vector<std::uint64_t>{1}));
}

TEST(MetricsRegistry, ConcurrentIncrementsSum) {
  Registry r;
  constexpr int threads = 8;
  constexpr int per_thread = 20000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&r, t] {
      // Registration races too: every thread looks the series up itself.
      Counter& c = r.counter("moeflow_tokens_total", "Tokens.", {{"layer", "0"}});
      Gauge& g = r.gauge("moeflow_tokens_in_flight", "Tokens in flight.");
      Histogram& h = r.histogram("moeflow_step_seconds", "Step.", {0.5});
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        g.add(1);
        h.observe((i + t) % 2 == 0 ? 0.25 : 1.0);
      }
      if (t == 0) (void)r.exposition();  // reading while others write
    });
  }
  for (auto& w : workers) w.join();
  const double total = threads * per_thread;
  EXPECT_EQ(r.counter("moeflow_tokens_total", "Tokens.", {{"layer", "0"}}).value(), total);
  EXPECT_EQ(r.gauge("moeflow_tokens_in_flight", "Tokens in flight.").value(), total);
  const auto s = r.histogram("moeflow_step_seconds", "Step.", {0.5}).snapshot();
  EXPECT_EQ(s.count, static_cast<std::uint64_t>(total));
  EXPECT_EQ(s.cumulative[0], static_cast<std::uint64_t>(total / 2));
}

TEST(MetricsRegistry, PromtoolAcceptsTheExposition) {
  if (std::system("command -v promtool > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package 'prometheus'); format checked by the "
                    "exact-text tests only";
  }
  Registry r;
  r.counter("moeflow_requests_total", "Requests served.", {{"code", "200"}}).add(3);
  r.gauge("moeflow_model_info", "Model \"x\"\nloaded.", {{"path", "C:\\m\"x\"\n"}}).set(1);
  r.histogram("moeflow_decode_step_seconds", "Decode step latency.", {0.25, 0.5, 1},
              {{"node", "a"}})
      .observe(0.3);
  FILE* pipe = popen("promtool check metrics", "w");
  ASSERT_NE(pipe, nullptr);
  const std::string text = r.exposition();
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), pipe), text.size());
  EXPECT_EQ(pclose(pipe), 0) << text;
}

}  // namespace
}  // namespace moeflow::metrics
