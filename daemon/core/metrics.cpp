#include "daemon/core/metrics.hpp"

#include <fmt/format.h>

namespace herald {

void Metrics::describe(std::string_view name, std::string_view type, std::string_view help) {
  std::lock_guard lock(mutex_);
  auto& f = families_[std::string(name)];
  f.type = type;
  f.help = help;
}

void Metrics::add(std::string_view name, std::string_view labels, double delta) {
  std::lock_guard lock(mutex_);
  families_[std::string(name)].values[std::string(labels)] += delta;
}

void Metrics::set(std::string_view name, std::string_view labels, double value) {
  std::lock_guard lock(mutex_);
  families_[std::string(name)].values[std::string(labels)] = value;
}

void Metrics::observe(std::string_view name, std::string_view labels, double value) {
  std::lock_guard lock(mutex_);
  auto& f = families_[std::string(name)];
  f.type = "histogram";
  auto& h = f.histograms[std::string(labels)];
  if (h.counts.empty()) {
    h.counts.assign(kLatencyBuckets.size(), 0);
  }
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (value <= kLatencyBuckets[i]) {
      h.counts[i] += 1;
      break;
    }
  }
  h.sum += value;
  h.count += 1;
}

void Metrics::reset(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    it->second.values.clear();
  }
}

double Metrics::value(std::string_view name, std::string_view labels) const {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    return 0;
  }
  auto v = it->second.values.find(std::string(labels));
  return v == it->second.values.end() ? 0 : v->second;
}

std::string Metrics::label(std::string_view value) {
  std::string out;
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  auto series = [](std::string_view name, std::string_view labels) {
    return labels.empty() ? std::string(name) : fmt::format("{}{{{}}}", name, labels);
  };
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) {
      out += fmt::format("# HELP {} {}\n", name, f.help);
    }
    out += fmt::format("# TYPE {} {}\n", name, f.type);
    for (const auto& [labels, v] : f.values) {
      out += fmt::format("{} {}\n", series(name, labels), v);
    }
    for (const auto& [labels, h] : f.histograms) {
      std::string sep = labels.empty() ? "" : ",";
      double cumulative = 0;
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += h.counts[i];
        out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, kLatencyBuckets[i],
                           cumulative);
      }
      out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, h.count);
      out += fmt::format("{} {}\n", series(name + "_sum", labels), h.sum);
      out += fmt::format("{} {}\n", series(name + "_count", labels), h.count);
    }
  }
  return out;
}

}  // namespace herald
