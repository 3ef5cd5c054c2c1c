// In-process metrics in the Prometheus text format: counters, gauges and histograms keyed by
// name and label set. Thread-safe; cheap enough for the hot path (one mutex, no allocation on
// an existing series beyond the key).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

class Metrics {
 public:
  // Declares a metric's help text and type ("counter", "gauge", "histogram").
  void describe(std::string_view name, std::string_view type, std::string_view help);
  // labels: Prometheus label syntax without braces, e.g. R"(channel="email",status="delivered")".
  void add(std::string_view name, std::string_view labels, double delta = 1);
  void set(std::string_view name, std::string_view labels, double value);
  void observe(std::string_view name, std::string_view labels, double value);
  // Clears every series of a gauge (before setting a fresh snapshot of it).
  void reset(std::string_view name);
  double value(std::string_view name, std::string_view labels) const;
  std::string render() const;

  // Escapes a label value for the text format.
  static std::string label(std::string_view value);

 private:
  struct Histogram {
    std::vector<double> counts;  // per bucket, not cumulative
    double sum = 0;
    double count = 0;
  };
  struct Family {
    std::string type = "counter";
    std::string help;
    std::map<std::string, double> values;
    std::map<std::string, Histogram> histograms;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

// Buckets for delivery attempt latency, in seconds.
inline const std::vector<double> kLatencyBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                 0.5,   1,    2.5,   5,    10,  30};

}  // namespace herald
