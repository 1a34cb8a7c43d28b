#pragma once
// Pearson's chi-square goodness-of-fit test for the speculative-sampling tests: observed counts
// against exact probabilities, cells with an expected count under 5 pooled into one, and the
// p-value from the regularized upper incomplete gamma function.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace moeflow::test_support {

// Q(a, x) = Γ(a, x) / Γ(a): series for x < a + 1, continued fraction above (Numerical Recipes).
inline double gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 1000 && std::fabs(term) > 1e-15 * std::fabs(sum); ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  const double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-15) break;
  }
  return std::exp(log_prefix) * h;
}

struct ChiSquare {
  double statistic = 0.0;
  int64_t df = 0;
  double p_value = 1.0;
  int64_t impossible = 0;  // observations in cells of probability 0 (must be none)
};

inline ChiSquare chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs) {
  if (counts.size() != probs.size()) throw std::invalid_argument("chi_square: size mismatch");
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  ChiSquare r;
  double pooled_expected = 0.0, pooled_observed = 0.0;
  int64_t cells = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] <= 0.0) {
      r.impossible += counts[i];
      continue;
    }
    const double expected = n * probs[i];
    if (expected < 5.0) {
      pooled_expected += expected;
      pooled_observed += counts[i];
      continue;
    }
    r.statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
    ++cells;
  }
  if (pooled_expected > 0.0) {
    r.statistic +=
        (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++cells;
  }
  r.df = cells - 1;
  r.p_value = r.df > 0 ? gamma_q(r.df / 2.0, r.statistic / 2.0) : 1.0;
  return r;
}

// The critical value at significance `alpha` (bisection on the p-value).
inline double chi_square_critical(int64_t df, double alpha) {
  double lo = 0.0, hi = 10.0 * df + 100.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (gamma_q(df / 2.0, mid / 2.0) > alpha ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Whether n samples from `wrong` give a chi-square statistic against `right` beyond the
// critical value with near certainty: the statistic is then about noncentral chi-square with
// λ = n Σ (wrong - right)² / right, of mean df + λ and variance 2 (df + 2λ); we ask the mean to
// clear the critical value by 4 standard deviations (power above 0.9999 in the normal limit).
inline double noncentrality(const std::vector<double>& wrong, const std::vector<double>& right,
                            int64_t n) {
  double lambda = 0.0;
  for (size_t i = 0; i < right.size(); ++i)
    if (right[i] > 0.0) lambda += (wrong[i] - right[i]) * (wrong[i] - right[i]) / right[i];
  return n * lambda;
}
inline bool detects_surely(double lambda, int64_t df, double alpha) {
  return df + lambda - chi_square_critical(df, alpha) >= 4.0 * std::sqrt(2.0 * (df + 2.0 * lambda));
}

}  // namespace moeflow::test_support
