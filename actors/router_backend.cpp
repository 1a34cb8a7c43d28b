#include "actors/router_backend.h"

#include "actors/actor_system_setup.h"
#include "core/error.h"

namespace moeflow {

RouterBackend::RouterBackend(caf::actor_system& system, router_actor router, ModelConfig config,
                             caf::timespan step_timeout)
    : self_(system),
      router_(std::move(router)),
      config_(std::move(config)),
      step_timeout_(step_timeout) {}

std::vector<float> RouterBackend::forward(const std::vector<SequenceTokens>& batch,
                                          bool all_positions, StepStats* stats,
                                          const ExpertBudget& budget) {
  auto request = std::make_shared<StepRequest>();
  request->sequences = batch;
  request->budget = budget;
  request->all_positions = all_positions;
  StepResultPtr result;
  std::string failure;
  self_->request(router_, step_timeout_, step_atom::value, StepRequestPtr(std::move(request)))
      .receive([&](const StepResultPtr& r) { result = r; },
               [&](caf::error& err) { failure = describe(err); });
  if (!result) throw Error("router step failed: " + failure);
  for (const SequenceTokens& s : batch) lengths_[s.seq_id] += static_cast<int64_t>(s.tokens.size());
  if (!result->expert_use.empty()) {
    draft_use_.resize(result->expert_use.size(), 0);
    for (size_t i = 0; i < draft_use_.size(); ++i) draft_use_[i] += result->expert_use[i];
    draft_rows_ += result->rows;
  }
  if (stats) {
    stats->rows = result->rows;
    stats->expert_use = result->expert_use;
    stats->expert_rows = 0;
    for (int64_t n : result->expert_use) stats->expert_rows += n;
  }
  return result->logits;
}

int64_t RouterBackend::sequence_length(uint64_t seq_id) const {
  auto it = lengths_.find(seq_id);
  return it == lengths_.end() ? 0 : it->second;
}

void RouterBackend::truncate(uint64_t seq_id, int64_t length) {
  auto it = lengths_.find(seq_id);
  if (it == lengths_.end() || it->second <= length) return;  // nothing past `length`
  it->second = length;
  self_->send(router_, truncate_atom::value, seq_id, length);
}

void RouterBackend::release(uint64_t seq_id) {
  lengths_.erase(seq_id);
  self_->send(router_, release_atom::value, seq_id);
}

}  // namespace moeflow
