// The adaptive speculation controller on synthetic measurements: γ follows the acceptance rate
// and the cost of drafting; speculation turns off where plain decoding is faster (low acceptance,
// or a large batch whose verify pass costs as much as γ + 1 plain steps) and back on after a
// probe finds it pays again; every decision carries its reason.
#include "model/speculative_controller.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace moeflow {
namespace {

ControllerOptions adaptive() {
  ControllerOptions o;
  o.adaptive = true;
  o.gamma = 4;
  o.probe_every = 4;
  o.probe_max = 16;
  return o;
}

// A speculative round of `batch` sequences at γ where each sequence accepted `accepted` drafts;
// a draft pass costs `draft` and the verify pass `verify` seconds per sequence.
SpeculativeRound round(int64_t batch, int64_t gamma, int64_t accepted, double draft,
                       double verify) {
  SpeculativeRound r;
  r.batch = batch;
  r.drafted = batch * gamma;
  r.accepted = batch * accepted;
  r.rejected = accepted < gamma ? batch : 0;
  r.verified_rows = batch * (gamma + 1);
  r.draft_seconds = draft * batch * gamma;
  r.verify_seconds = verify * batch;
  r.emitted = batch * (accepted + 1);
  return r;
}

// Batch 1 measured both ways: a plain step of 10 ms, and a speculative round whose drafts are
// rarely accepted while a draft costs 80% of a plain step: slower than plain.
void measure_slower_than_plain(SpeculationController& c) {
  c.decide(1);
  c.record_plain(1, 0.010);
  c.decide(1);
  c.record_speculative(round(1, 4, 0, 0.008, 0.012));
}

TEST(SpeculativeController, ExpectedTokensPerRound) {
  EXPECT_DOUBLE_EQ(SpeculationController::expected_tokens(1.0, 4), 5.0);
  EXPECT_DOUBLE_EQ(SpeculationController::expected_tokens(0.0, 4), 1.0);
  EXPECT_NEAR(SpeculationController::expected_tokens(0.5, 2), 1.75, 1e-12);
}

TEST(SpeculativeController, FixedGammaAlwaysSpeculates) {
  ControllerOptions o;
  o.adaptive = false;
  o.gamma = 3;
  SpeculationController c(o);
  for (int64_t batch : {1, 16, 64}) {
    const SpeculationDecision d = c.decide(batch);
    EXPECT_TRUE(d.speculate);
    EXPECT_EQ(d.gamma, 3);
    EXPECT_EQ(d.reason, SpeculationReason::fixed);
    c.record_speculative(round(batch, 3, 0, 1.0, 10.0));  // however badly it goes
  }
  EXPECT_EQ(reason_name(SpeculationReason::slower_than_plain), "slower_than_plain");
}

TEST(SpeculativeController, MeasuresBothModesThenPicksTheFaster) {
  SpeculationController c(adaptive());
  SpeculationDecision d = c.decide(1);
  EXPECT_FALSE(d.speculate);
  EXPECT_EQ(d.reason, SpeculationReason::measuring);
  c.record_plain(1, 0.010);
  d = c.decide(1);
  EXPECT_TRUE(d.speculate);
  EXPECT_EQ(d.reason, SpeculationReason::measuring);
  EXPECT_EQ(d.gamma, 4);
  // Every draft accepted, a draft costs 30% of a plain step, verifying 4 more rows costs 10%.
  c.record_speculative(round(1, 4, 4, 0.003, 0.011));
  d = c.decide(1);
  EXPECT_TRUE(d.speculate);
  EXPECT_EQ(d.reason, SpeculationReason::pays);
  EXPECT_EQ(d.gamma, 8);  // all accepted: draft as far as allowed
  EXPECT_GT(d.predicted_speedup, 2.0);
  EXPECT_DOUBLE_EQ(d.acceptance, 1.0);
  EXPECT_NEAR(d.draft_cost_ratio, 0.3, 1e-9);
}

TEST(SpeculativeController, GammaFollowsAcceptance) {
  SpeculationController c(adaptive());
  c.decide(1);
  c.record_plain(1, 0.010);
  c.decide(1);
  // Half the drafts accepted, cheap drafts: a short γ is best.
  for (int i = 0; i < 20; ++i) c.record_speculative(round(1, 4, 1, 0.001, 0.011));
  const SpeculationDecision low = c.decide(1);
  EXPECT_NEAR(low.acceptance, 0.5, 1e-9);
  for (int i = 0; i < 40; ++i) c.record_speculative(round(1, 4, 4, 0.001, 0.011));
  const SpeculationDecision high = c.decide(1);
  EXPECT_GT(high.acceptance, 0.99);
  EXPECT_LT(low.gamma, high.gamma);
  EXPECT_TRUE(low.speculate);
}

TEST(SpeculativeController, SwitchesOffWhenSlowerAndBackOnAfterProbe) {
  ControllerOptions o = adaptive();
  o.probe_overhead = 1.0;  // cost no constraint here: see ProbesStayWithinOverheadBudget
  SpeculationController c(o);
  measure_slower_than_plain(c);
  SpeculationDecision d = c.decide(1);
  EXPECT_FALSE(d.speculate);
  EXPECT_EQ(d.reason, SpeculationReason::slower_than_plain);
  EXPECT_LT(d.predicted_speedup, 1.0);
  // Plain rounds until a probe speculates once.
  int rounds = 0;
  for (; rounds < 100; ++rounds) {
    d = c.decide(1);
    if (d.speculate) break;
    EXPECT_EQ(d.reason, SpeculationReason::slower_than_plain);
    c.record_plain(1, 0.010);
  }
  EXPECT_EQ(d.reason, SpeculationReason::probe);
  EXPECT_EQ(rounds, 4);  // probe_every
  // The probe finds that drafts are now accepted and cheap: speculation comes back on.
  for (int i = 0; i < 10; ++i) c.record_speculative(round(1, 4, 4, 0.002, 0.011));
  d = c.decide(1);
  EXPECT_TRUE(d.speculate);
  EXPECT_EQ(d.reason, SpeculationReason::pays);
}

// The server's scheduler decodes plainly between probes without asking (plain_rounds_ahead) and
// reports those rounds afterwards (record_plain_elsewhere): the probe comes when it would have.
TEST(SpeculativeController, PlainRoundsRunElsewhereCountTowardsTheNextProbe) {
  ControllerOptions o = adaptive();
  o.probe_overhead = 1.0;
  SpeculationController c(o);
  EXPECT_EQ(c.plain_rounds_ahead(1), 0);  // nothing decided yet
  measure_slower_than_plain(c);
  SpeculationDecision d = c.decide(1);
  ASSERT_EQ(d.reason, SpeculationReason::slower_than_plain);
  // The switch starts the count: probe_every = 4 plain rounds before the probe is due.
  EXPECT_EQ(c.plain_rounds_ahead(1), 4);
  c.record_plain_elsewhere(1, 4, 4, 4 * 0.010);
  EXPECT_EQ(c.plain_rounds_ahead(1), 0);
  d = c.decide(1);
  EXPECT_EQ(d.reason, SpeculationReason::probe);
  EXPECT_TRUE(d.speculate);
  // Not adaptive, or speculating: nothing to run elsewhere.
  ControllerOptions fixed;
  fixed.adaptive = false;
  SpeculationController f(fixed);
  f.decide(1);
  EXPECT_EQ(f.plain_rounds_ahead(1), 0);
}

TEST(SpeculativeController, LargeBatchDecodesPlainlyWhileSmallBatchSpeculates) {
  SpeculationController c(adaptive());
  for (int64_t batch : {1, 16}) {
    c.decide(batch);
    c.record_plain(batch, batch == 1 ? 0.010 : 0.030);
    c.decide(batch);
  }
  // Acceptance 75%. Batch 1: verifying is nearly free (weights are read once either way).
  // Batch 16: compute-bound, verifying γ more rows costs γ more plain steps.
  c.record_speculative(round(1, 4, 3, 0.004, 0.011));
  c.record_speculative(round(16, 4, 3, 0.0012, 5 * 0.030 / 16));
  const SpeculationDecision small = c.decide(1);
  const SpeculationDecision large = c.decide(16);
  EXPECT_TRUE(small.speculate);
  EXPECT_EQ(small.reason, SpeculationReason::pays);
  EXPECT_FALSE(large.speculate);
  EXPECT_EQ(large.reason, SpeculationReason::slower_than_plain);
}

TEST(SpeculativeController, ProbesBackOffWhileTheyConfirm) {
  ControllerOptions o = adaptive();
  o.probe_overhead = 1.0;  // cost no constraint here: see ProbesStayWithinOverheadBudget
  SpeculationController c(o);
  measure_slower_than_plain(c);
  std::vector<int> probes;
  for (int r = 0; r < 60; ++r) {
    const SpeculationDecision d = c.decide(1);
    if (d.reason == SpeculationReason::probe) {
      probes.push_back(r);
      c.record_speculative(round(1, d.gamma, 0, 0.008, 0.012));  // still slower
    } else {
      c.record_plain(1, 0.010);
    }
  }
  ASSERT_GE(probes.size(), 3u);
  EXPECT_LT(probes[1] - probes[0], probes[2] - probes[1]);  // 4, 8, 16, 16, ...
}

// A drafter's catch-up prefill costs a quarter of a plain round per token and sequence, up to
// draft_context tokens: a probe after a long stretch of plain decoding costs about 8 plain rounds
// more than decoding plainly, and probes wait until the plain decoding since the last one has
// earned that within the 2% budget. The first probe is budgeted too: the measuring round timed a
// catch-up (the drafter's prompt prefill).
TEST(SpeculativeController, ProbesStayWithinOverheadBudget) {
  ControllerOptions o = adaptive();
  o.probe_overhead = 0.02;
  o.draft_context = 32;
  SpeculationController c(o);
  const double plain = 0.010, row = 0.25 * plain;
  const int64_t batch = 4;
  auto probe_round = [&](int64_t gamma, int64_t lag) {
    SpeculativeRound p = round(batch, gamma, 0, 0.008, 0.012);
    p.catch_up_rows = batch * std::min<int64_t>(lag, 32);
    p.catch_up_seconds = row * p.catch_up_rows;
    return p;
  };
  c.decide(batch);
  c.record_plain(batch, plain * batch);
  c.decide(batch);
  c.record_speculative(probe_round(4, 16));  // the measuring round, with a 16-token prompt
  double probe_excess = 0.0, plain_time = 0.0;
  std::vector<int> probes;
  int64_t lag = 0;
  for (int r = 0; r < 20000; ++r) {
    const SpeculationDecision d = c.decide(batch);
    ++lag;
    if (d.reason == SpeculationReason::probe) {
      const SpeculativeRound p = probe_round(d.gamma, lag);
      c.record_speculative(p);
      probe_excess += p.catch_up_seconds + p.draft_seconds + p.verify_seconds - plain * batch;
      probes.push_back(r);
      lag = 0;
    } else {
      EXPECT_FALSE(d.speculate);
      c.record_plain(batch, plain * batch);
      plain_time += plain * batch;
    }
  }
  ASSERT_GE(probes.size(), 3u);
  EXPECT_GT(probes[0], 16);  // later than probe_every alone would allow
  EXPECT_LE(probe_excess / plain_time, 0.02 + 1e-9);
  EXPECT_GE(probe_excess / plain_time, 0.01);  // but not needlessly rarely
}

// A plain step descheduled for 50x its time does not switch speculation on.
TEST(SpeculativeController, OneSlowStepDoesNotFlipTheDecision) {
  SpeculationController c(adaptive());
  c.decide(1);
  c.record_plain(1, 0.010);
  c.decide(1);
  c.record_speculative(round(1, 2, 1, 0.008, 0.012));  // α 0.5, drafts cost 80%: slower
  EXPECT_EQ(c.decide(1).reason, SpeculationReason::slower_than_plain);
  c.record_plain(1, 0.500);
  const SpeculationDecision d = c.decide(1);
  EXPECT_FALSE(d.speculate);
  EXPECT_EQ(d.reason, SpeculationReason::slower_than_plain);
}

TEST(SpeculativeController, RefusesBadOptions) {
  ControllerOptions o;
  o.gamma = 0;
  EXPECT_THROW(SpeculationController{o}, Error);
  o = {};
  o.gamma_max = 0;
  EXPECT_THROW(SpeculationController{o}, Error);
  o = {};
  o.smoothing = 0.0;
  EXPECT_THROW(SpeculationController{o}, Error);
  o = {};
  o.probe_overhead = 0.0;
  EXPECT_THROW(SpeculationController{o}, Error);
}

}  // namespace
}  // namespace moeflow
