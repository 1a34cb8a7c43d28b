#pragma once
// A small thread-safe metrics registry that writes the Prometheus text exposition format, version
// 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/). Pure library: whoever owns
// the metrics (STYLE.md point 10) registers its series here and serves exposition().
//
// Names are validated: metric names against [a-zA-Z_][a-zA-Z0-9_]* (the Prometheus regex without
// the colon, which is reserved for recording rules and banned in moeflow's exported names), label
// names against [a-zA-Z_][a-zA-Z0-9_]*, with names starting "__" and the label "le" (used by
// histograms) refused. Counter names must end in "_total". A bad name throws moeflow::Error.
//
// Output is deterministic: families sorted by name, series within a family by their label set
// (labels themselves sorted by name).
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace moeflow::metrics {

// Label name -> value; std::map keeps the names sorted, which is also the order they are written.
using Labels = std::map<std::string, std::string>;

// A monotonically increasing value; add() refuses a negative amount.
class Counter {
 public:
  void inc() { add(1.0); }
  void add(double amount);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that can go up and down.
class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with upper bounds `bounds` (strictly increasing, finite) plus
// the implicit +Inf bucket. An observation v lands in the first bucket with v <= bound.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);

  // A consistent copy: cumulative counts per bound (the last entry is +Inf, equal to count).
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;
    double sum = 0.0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; one more than bounds_
  double sum_ = 0.0;
  std::uint64_t count_ = 0;
};

class Registry {
 public:
  // Each returns the series for (name, labels), creating it on first use; the reference stays
  // valid for the registry's lifetime. Registering a name again with another type, help text or
  // bucket layout throws moeflow::Error.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& buckets, const Labels& labels = {});

  // Leaves every series of `name` whose labels include all of `labels` out of exposition() (a
  // peer removed from the deployment, say), until it is asked for again by counter(), gauge()
  // or histogram(). The series objects live on, so references handed out stay valid.
  void hide(const std::string& name, const Labels& labels);

  // The whole registry in the text format, version 0.0.4.
  std::string exposition() const;

  // The Content-Type header to serve exposition() with.
  static constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { counter, gauge, histogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
    std::set<Labels> hidden;
  };
  static const char* type_name(Type type);
  Family& family(const std::string& name, const std::string& help, Type type, const Labels& labels,
                 const std::vector<double>& buckets);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// Helpers, exposed for tests and for other writers of the format.
bool valid_metric_name(const std::string& name);
bool valid_label_name(const std::string& name);
// Label value escaping: backslash, double quote and newline.
std::string escape_label_value(const std::string& value);
// HELP escaping: backslash and newline.
std::string escape_help(const std::string& help);
// A sample value as Prometheus writes it: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string format_value(double value);

}  // namespace moeflow::metrics
