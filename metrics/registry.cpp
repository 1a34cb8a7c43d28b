#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.h"

namespace moeflow::metrics {
namespace {

bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool name_rest(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}

bool valid_identifier(const std::string& name) {
  if (name.empty() || !name_start(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), name_rest);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One sample line: name{labels} value, with `extra` (le) appended after the series' own labels.
void write_sample(std::string& out, const std::string& name, const Labels& labels,
                  const std::string& extra_name, const std::string& extra_value, double value) {
  out += name;
  if (!labels.empty() || !extra_name.empty()) {
    out += '{';
    bool first = true;
    auto write_label = [&](const std::string& k, const std::string& v) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      out += escape_label_value(v);
      out += '"';
    };
    for (const auto& [k, v] : labels) write_label(k, v);
    if (!extra_name.empty()) write_label(extra_name, extra_value);
    out += '}';
  }
  out += ' ';
  out += format_value(value);
  out += '\n';
}

}  // namespace

bool valid_metric_name(const std::string& name) {
  return valid_identifier(name);
}

bool valid_label_name(const std::string& name) {
  return valid_identifier(name) && name.rfind("__", 0) != 0;
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

void Counter::add(double amount) {
  if (!(amount >= 0.0)) {
    throw Error("metrics: a counter can only go up, got add(" + format_value(amount) + ")");
  }
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  // First bound >= value; NaN and values above every bound land in +Inf.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  const auto bucket = static_cast<std::size_t>(it - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[std::isnan(value) ? bounds_.size() : bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  std::lock_guard lock(mutex_);
  std::uint64_t running = 0;
  for (std::uint64_t c : counts_) {
    running += c;
    s.cumulative.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

const char* Registry::type_name(Type type) {
  switch (type) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      return "histogram";
  }
  return "untyped";
}

Registry::Family& Registry::family(const std::string& name, const std::string& help, Type type,
                                   const Labels& labels, const std::vector<double>& buckets) {
  if (!valid_metric_name(name)) {
    throw Error("metrics: bad metric name '" + name +
                "' (must match [a-zA-Z_][a-zA-Z0-9_]*; no colons)");
  }
  if (type == Type::counter && !ends_with(name, "_total")) {
    throw Error("metrics: counter '" + name + "' must end in _total");
  }
  if (type != Type::counter && ends_with(name, "_total")) {
    throw Error("metrics: '" + name + "' ends in _total but is not a counter");
  }
  if (type == Type::histogram &&
      (ends_with(name, "_bucket") || ends_with(name, "_sum") || ends_with(name, "_count"))) {
    throw Error("metrics: histogram '" + name + "' must not end in _bucket, _sum or _count");
  }
  for (const auto& [label, value] : labels) {
    if (!valid_label_name(label)) {
      throw Error("metrics: bad label name '" + label + "' on '" + name +
                  "' (must match [a-zA-Z_][a-zA-Z0-9_]*, not start with __)");
    }
    if (type == Type::histogram && label == "le") {
      throw Error("metrics: label 'le' is reserved on histogram '" + name + "'");
    }
  }
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
      throw Error("metrics: histogram '" + name +
                  "' buckets must be finite and strictly increasing (+Inf is implicit)");
    }
  }
  auto [it, inserted] = families_.try_emplace(name);
  Family& f = it->second;
  if (inserted) {
    f.type = type;
    f.help = help;
    f.buckets = buckets;
  } else if (f.type != type || f.help != help || f.buckets != buckets) {
    throw Error("metrics: '" + name + "' registered again as a " + type_name(type) +
                " with different type, help or buckets");
  }
  return f;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::counter, labels, {});
  f.hidden.erase(labels);
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::gauge, labels, {});
  f.hidden.erase(labels);
  auto& slot = f.gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const std::vector<double>& buckets, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::histogram, labels, buckets);
  f.hidden.erase(labels);
  auto& slot = f.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(buckets);
  return *slot;
}

void Registry::hide(const std::string& name, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  Family& f = it->second;
  auto matches = [&labels](const Labels& series) {
    for (const auto& [k, v] : labels) {
      auto s = series.find(k);
      if (s == series.end() || s->second != v) return false;
    }
    return true;
  };
  for (const auto& [l, c] : f.counters)
    if (matches(l)) f.hidden.insert(l);
  for (const auto& [l, g] : f.gauges)
    if (matches(l)) f.hidden.insert(l);
  for (const auto& [l, h] : f.histograms)
    if (matches(l)) f.hidden.insert(l);
}

std::string Registry::exposition() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + name + " " + type_name(f.type) + "\n";
    for (const auto& [labels, c] : f.counters)
      if (!f.hidden.count(labels)) write_sample(out, name, labels, "", "", c->value());
    for (const auto& [labels, g] : f.gauges)
      if (!f.hidden.count(labels)) write_sample(out, name, labels, "", "", g->value());
    for (const auto& [labels, h] : f.histograms) {
      if (f.hidden.count(labels)) continue;
      const Histogram::Snapshot s = h->snapshot();
      for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
        const std::string le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
        write_sample(out, name + "_bucket", labels, "le", le, static_cast<double>(s.cumulative[i]));
      }
      write_sample(out, name + "_sum", labels, "", "", s.sum);
      write_sample(out, name + "_count", labels, "", "", static_cast<double>(s.count));
    }
  }
  return out;
}

}  // namespace moeflow::metrics
