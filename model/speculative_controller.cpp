#include "model/speculative_controller.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moeflow {

std::string reason_name(SpeculationReason reason) {
  switch (reason) {
    case SpeculationReason::fixed:
      return "fixed";
    case SpeculationReason::measuring:
      return "measuring";
    case SpeculationReason::pays:
      return "pays";
    case SpeculationReason::slower_than_plain:
      return "slower_than_plain";
    case SpeculationReason::probe:
      return "probe";
  }
  return "unknown";
}

SpeculationController::SpeculationController(const ControllerOptions& opts)
    : opts_(opts), gamma_(opts.gamma) {
  if (opts.gamma_min < 1 || opts.gamma_max < opts.gamma_min)
    throw Error("speculation: γ range [" + std::to_string(opts.gamma_min) + ", " +
                std::to_string(opts.gamma_max) + "] is empty or below 1");
  if (opts.gamma < opts.gamma_min || opts.gamma > opts.gamma_max)
    throw Error("speculation: γ " + std::to_string(opts.gamma) + " is outside [" +
                std::to_string(opts.gamma_min) + ", " + std::to_string(opts.gamma_max) + "]");
  if (!(opts.smoothing > 0.0 && opts.smoothing <= 1.0))
    throw Error("speculation: smoothing must be in (0, 1], got " + std::to_string(opts.smoothing));
  if (opts.probe_every < 1 || opts.probe_max < opts.probe_every)
    throw Error("speculation: probe_every must be >= 1 and <= probe_max");
  if (!(opts.probe_overhead > 0.0 && opts.probe_overhead <= 1.0))
    throw Error("speculation: probe_overhead must be in (0, 1], got " +
                std::to_string(opts.probe_overhead));
  if (!(opts.hysteresis >= 0.0 && opts.hysteresis < 1.0))
    throw Error("speculation: hysteresis must be in [0, 1), got " +
                std::to_string(opts.hysteresis));
  for (Bucket& b : buckets_) b.probe_interval = opts.probe_every;
  last_.gamma = opts.gamma;
}

int SpeculationController::bucket_of(int64_t batch) {
  int b = 0;
  while (b + 1 < 16 && (int64_t{1} << b) < batch) ++b;
  return b;
}

double SpeculationController::ema(double old, double now) const {
  return old < 0 ? now : (1.0 - opts_.smoothing) * old + opts_.smoothing * now;
}

double SpeculationController::ema_time(double old, double now) const {
  // On a shared machine a pass is sometimes descheduled and takes several times its usual
  // time; such a spike moves the average by at most a smoothing step of 2x, so that one slow
  // plain step cannot make speculation look worth switching on (or the reverse).
  return ema(old, old < 0 ? now : std::min(now, 2.0 * old));
}

double SpeculationController::acceptance() const {
  return attempts_avg_ > 0 ? accepted_avg_ / attempts_avg_ : -1.0;
}

double SpeculationController::expected_tokens(double alpha, int64_t gamma) {
  if (alpha >= 1.0 - 1e-9) return static_cast<double>(gamma + 1);
  return (1.0 - std::pow(alpha, static_cast<double>(gamma + 1))) / (1.0 - alpha);
}

double SpeculationController::verify_cost(const Bucket& b, int64_t gamma) const {
  // A verify pass is a plain step with γ more rows per sequence: its cost is interpolated
  // linearly in rows between the measured plain step (γ = 0) and the measured verify pass.
  const double extra = std::max(0.0, b.verify - b.plain);
  return b.plain + (b.verify_gamma > 0 ? extra * gamma / b.verify_gamma : extra);
}

double SpeculationController::predicted_speedup(const Bucket& b, int64_t gamma) const {
  const double round = gamma * b.draft + verify_cost(b, gamma);
  return b.plain * expected_tokens(acceptance(), gamma) / round;
}

double SpeculationController::probe_excess(const Bucket& b, int64_t batch, int64_t gamma,
                                           int64_t lag) const {
  if (opts_.draft_context > 0) lag = std::min(lag, opts_.draft_context);
  const double catch_up = catch_up_row_ > 0 ? catch_up_row_ * lag * batch : 0.0;
  const double round = batch * (gamma * b.draft + verify_cost(b, gamma));
  return catch_up + round - batch * b.plain * expected_tokens(acceptance(), gamma);
}

double SpeculationController::best_speedup(const Bucket& b, int64_t* gamma) const {
  double best = -1.0;
  for (int64_t g = opts_.gamma_min; g <= opts_.gamma_max; ++g) {
    const double s = predicted_speedup(b, g);
    if (s > best) {
      best = s;
      *gamma = g;
    }
  }
  return best;
}

SpeculationController::Bucket SpeculationController::estimates(int index) const {
  // A batch size not seen yet borrows each missing cost from the nearest bucket that has it, so
  // that a batch that grows or shrinks does not pay for measuring rounds at every size; its
  // own rounds then replace the borrowed costs.
  Bucket est = buckets_[index];
  const int n = static_cast<int>(buckets_.size());
  auto borrow = [&](auto has, auto copy) {
    for (int step = 1; step < n && !has(est); ++step)
      for (int i : {index - step, index + step})
        if (i >= 0 && i < n && has(buckets_[i]) && !has(est)) copy(buckets_[i]);
  };
  borrow([](const Bucket& b) { return b.plain >= 0; },
         [&](const Bucket& b) { est.plain = b.plain; });
  borrow([](const Bucket& b) { return b.draft >= 0; },
         [&](const Bucket& b) { est.draft = b.draft; });
  borrow([](const Bucket& b) { return b.verify >= 0; },
         [&](const Bucket& b) {
           est.verify = b.verify;
           est.verify_gamma = b.verify_gamma;
         });
  return est;
}

SpeculationDecision SpeculationController::decide(int64_t batch) {
  SpeculationDecision d;
  d.gamma = gamma_;
  if (!opts_.adaptive) {
    d.reason = SpeculationReason::fixed;
    return last_ = d;
  }
  const int index = bucket_of(batch);
  Bucket& b = buckets_[index];
  const Bucket est = estimates(index);
  d.reason = SpeculationReason::measuring;
  if (est.plain < 0) {
    d.speculate = false;
    return last_ = d;
  }
  if (est.verify < 0 || est.draft < 0 || acceptance() < 0) return last_ = d;

  d.acceptance = acceptance();
  d.draft_cost_ratio = est.draft / est.plain;
  d.predicted_speedup = best_speedup(est, &d.gamma);
  gamma_ = d.gamma;
  const bool on = b.on ? d.predicted_speedup >= 1.0 - opts_.hysteresis
                       : d.predicted_speedup > 1.0 + opts_.hysteresis;
  if (on != b.on) {
    b.on = on;
    b.rounds_since_probe = 0;
    b.probe_interval = opts_.probe_every;
  } else if (++b.rounds_since_probe > b.probe_interval &&
             // A speculative probe also waits until the plain decoding since the last one has
             // earned its predicted cost within the overhead budget.
             (b.on || probe_excess(est, batch, d.gamma, b.rounds_since_probe) <=
                          opts_.probe_overhead * est.plain * batch * b.rounds_since_probe)) {
    // The other mode's measurements age; refresh them now and then, less often each time the
    // probe confirms the current mode.
    b.rounds_since_probe = 0;
    b.probe_interval = std::min(2 * b.probe_interval, opts_.probe_max);
    d.speculate = !b.on;
    d.reason = SpeculationReason::probe;
    return last_ = d;
  }
  d.speculate = b.on;
  d.reason = b.on ? SpeculationReason::pays : SpeculationReason::slower_than_plain;
  return last_ = d;
}

void SpeculationController::record_speculative(const SpeculativeRound& r) {
  if (r.batch < 1 || r.drafted < 1) return;  // nothing drafted: nothing learnt
  Bucket& b = buckets_[bucket_of(r.batch)];
  if (last_.reason == SpeculationReason::probe && !b.on && b.plain > 0) {
    // What this probe cost beyond decoding its tokens plainly, in plain rounds: the next probe
    // waits long enough for that to stay within the overhead budget.
    const double excess = r.catch_up_seconds + r.draft_seconds + r.verify_seconds -
                          b.plain * static_cast<double>(r.emitted);
    const double rounds = excess / (opts_.probe_overhead * b.plain * r.batch);
    if (rounds > b.probe_interval)
      b.probe_interval =
          static_cast<int64_t>(std::ceil(std::min(rounds, double{kProbeIntervalMax})));
  }
  if (r.catch_up_rows > 0)
    catch_up_row_ =
        ema_time(catch_up_row_, r.catch_up_seconds / static_cast<double>(r.catch_up_rows));
  b.draft = ema_time(b.draft, r.draft_seconds / r.drafted);
  b.verify = ema_time(b.verify, r.verify_seconds / r.batch);
  const double gamma = static_cast<double>(r.verified_rows) / r.batch - 1.0;
  b.verify_gamma = b.verify_gamma > 0 ? ema(b.verify_gamma, gamma) : gamma;
  accepted_avg_ = ema(accepted_avg_, static_cast<double>(r.accepted));
  attempts_avg_ = ema(attempts_avg_, static_cast<double>(r.accepted + r.rejected));
}

void SpeculationController::record_plain_elsewhere(int64_t batch, int64_t rounds, int64_t timed,
                                                   double seconds) {
  if (batch < 1 || rounds < 1) return;
  if (timed > 0) record_plain(batch, seconds / static_cast<double>(timed));
  Bucket& b = buckets_[bucket_of(batch)];
  // decide() counts one round per call; these did not call it.
  b.rounds_since_probe += rounds;
}

int64_t SpeculationController::plain_rounds_ahead(int64_t batch) const {
  if (!opts_.adaptive || last_.reason != SpeculationReason::slower_than_plain) return 0;
  const int index = bucket_of(batch);
  const Bucket& b = buckets_[index];
  const Bucket est = estimates(index);
  if (est.plain < 0) return 0;
  // decide() probes at the call where rounds_since_probe, counted up, passes probe_interval and
  // the probe's predicted cost fits the overhead budget (see decide()); the rounds before it are
  // plain. Bounded: past that, asking once more costs nothing that matters.
  int64_t n = std::max<int64_t>(0, b.probe_interval - b.rounds_since_probe);
  for (const int64_t limit = n + 4096; n < limit; ++n) {
    const int64_t at = b.rounds_since_probe + n + 1;
    if (probe_excess(est, batch, gamma_, at) <=
        opts_.probe_overhead * est.plain * static_cast<double>(batch * at))
      break;
  }
  return n;
}

void SpeculationController::record_plain(int64_t batch, double seconds) {
  if (batch < 1) return;
  Bucket& b = buckets_[bucket_of(batch)];
  b.plain = ema_time(b.plain, seconds / batch);
}

}  // namespace moeflow
