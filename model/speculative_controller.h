#pragma once
// When to speculate and how far. γ follows the measured acceptance rate; speculation switches
// itself off where plain decoding produces tokens faster (large batches, low acceptance) and back
// on after a probe. Every decision comes from times measured on this machine at this batch size
// (seconds per drafted token, per verified row, per plain step), never from a fixed threshold.
#include <array>
#include <cstdint>
#include <string>

namespace moeflow {

enum class SpeculationReason : uint8_t {
  fixed,              // not adaptive: always speculate with the configured γ
  measuring,          // adaptive, first rounds at this batch size: timing both modes
  pays,               // speculation is predicted faster than plain decoding
  slower_than_plain,  // speculation is predicted slower: decode plainly
  probe,              // one round of the mode not chosen, to refresh its measurements
};
inline constexpr int kSpeculationReasons = 5;
// "fixed", "measuring", "pays", "slower_than_plain", "probe" (for logs and metric labels).
std::string reason_name(SpeculationReason reason);

struct SpeculationDecision {
  bool speculate = true;
  int64_t gamma = 4;
  SpeculationReason reason = SpeculationReason::fixed;
  // What the decision rests on (0 while unknown): predicted tokens/s with speculation over
  // plain, measured per-token acceptance rate, draft pass cost over plain step cost.
  double predicted_speedup = 0.0;
  double acceptance = 0.0;
  double draft_cost_ratio = 0.0;
};

struct ControllerOptions {
  bool adaptive = true;
  int64_t gamma = 4;  // the fixed γ, or the adaptive controller's first
  int64_t gamma_min = 1;
  int64_t gamma_max = 8;
  double smoothing = 0.2;    // weight of a new round in the moving averages
  int64_t probe_every = 16;  // rounds in one mode before the first probe of the other (at least)
  int64_t probe_max = 256;   // probes that confirm the mode back off, doubling up to this
  double hysteresis = 0.05;  // switch only when the predicted speedup leaves 1 ± this
  // While speculation is off, probes may cost at most this fraction of the plain decoding time
  // between them (a probe's catch-up prefill and slower round, as measured): the probe interval
  // grows until they do.
  double probe_overhead = 0.02;
  // The most tokens per sequence a drafter catches up before a probe (0: every token since it
  // last drafted); SpeculativeDecoder sets it from its draft_context.
  int64_t draft_context = 0;
};

// What one speculative round of `batch` sequences measured.
struct SpeculativeRound {
  int64_t batch = 0;
  int64_t drafted = 0;        // drafted tokens, Σ γ_s
  int64_t accepted = 0;       // of which accepted
  int64_t rejected = 0;       // sequences whose drafts met a rejection (at most one each)
  int64_t verified_rows = 0;  // rows of the verify pass, Σ (γ_s + 1)
  double draft_seconds = 0;   // the draft passes (catch-up prefill excluded)
  double verify_seconds = 0;
  double catch_up_seconds = 0;  // the drafter's prefill of tokens it had not seen
  int64_t catch_up_rows = 0;
  int64_t emitted = 0;  // tokens produced
};

class SpeculationController {
 public:
  explicit SpeculationController(const ControllerOptions& opts);  // throws moeflow::Error

  // The plan for the next round of `batch` sequences; the caller then reports what it measured.
  SpeculationDecision decide(int64_t batch);
  void record_speculative(const SpeculativeRound& round);
  void record_plain(int64_t batch, double seconds);
  // `rounds` plain rounds of `batch` sequences ran elsewhere (they count towards the next probe);
  // `timed` of them, steady decode steps, took `seconds` in all.
  void record_plain_elsewhere(int64_t batch, int64_t rounds, int64_t timed, double seconds);
  // While speculation is off at this batch size: rounds until the next probe is due (at least);
  // else 0.
  int64_t plain_rounds_ahead(int64_t batch) const;

  const SpeculationDecision& last() const { return last_; }
  // Moving average of the per-token acceptance rate; -1 before any speculative round.
  double acceptance() const;
  // Expected tokens per sequence from one round: drafts accepted until the first rejection,
  // plus the correction or bonus token, at i.i.d. per-token acceptance `alpha`.
  static double expected_tokens(double alpha, int64_t gamma);

 private:
  // Costs are per sequence, kept per batch-size bucket (powers of two): pass times grow with the
  // batch, sublinearly while decoding is bound by reading weights.
  struct Bucket {
    double draft = -1;   // seconds per drafted token (one sequence, one draft pass)
    double verify = -1;  // seconds per sequence of a verify pass of `verify_gamma` drafts
    double verify_gamma = 0;
    double plain = -1;  // seconds per sequence of a plain step
    bool on = true;
    int64_t rounds_since_probe = 0;
    int64_t probe_interval = 0;
  };
  static constexpr int64_t kProbeIntervalMax = int64_t{1} << 20;
  static int bucket_of(int64_t batch);
  Bucket estimates(int index) const;
  // Predicted speedup of γ at `b`; best over [gamma_min, gamma_max] into *gamma.
  double verify_cost(const Bucket& b, int64_t gamma) const;
  double predicted_speedup(const Bucket& b, int64_t gamma) const;
  // Seconds a speculative probe would cost beyond decoding its tokens plainly, with the
  // drafter's catch-up after `lag` plain rounds.
  double probe_excess(const Bucket& b, int64_t batch, int64_t gamma, int64_t lag) const;
  double best_speedup(const Bucket& b, int64_t* gamma) const;
  double ema(double old, double now) const;
  double ema_time(double old, double now) const;  // for pass times: spikes clipped

  ControllerOptions opts_;
  std::array<Bucket, 16> buckets_;
  double accepted_avg_ = -1, attempts_avg_ = -1;
  double catch_up_row_ = -1;  // seconds per row of the drafter's catch-up prefill
  int64_t gamma_;
  SpeculationDecision last_;
};

}  // namespace moeflow
