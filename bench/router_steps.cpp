#include "bench/router_steps.h"

#include "actors/actor_system_setup.h"
#include "core/error.h"
#include "model/sampler.h"

namespace moeflow::bench {

StepRequestPtr random_prompt_step(int64_t batch, int64_t prompt, uint64_t first_id, int64_t vocab,
                                  std::mt19937_64& rng) {
  auto step = std::make_shared<StepRequest>();
  for (int64_t s = 0; s < batch; ++s) {
    std::vector<int32_t> tokens(static_cast<size_t>(prompt));
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
    step->sequences.push_back({first_id + static_cast<uint64_t>(s), std::move(tokens)});
  }
  return step;
}

StepResultPtr run_router_step(caf::scoped_actor& self, const router_actor& router,
                              const StepRequestPtr& step) {
  StepResultPtr result;
  self->request(router, caf::infinite, step_atom::value, step)
      .receive([&](const StepResultPtr& r) { result = r; },
               [&](caf::error& err) { throw Error("step failed: " + describe(err)); });
  return result;
}

StepRequestPtr greedy_next_step(const StepRequest& step, const StepResult& result) {
  auto next = std::make_shared<StepRequest>();
  for (size_t s = 0; s < step.sequences.size(); ++s)
    next->sequences.push_back({step.sequences[s].seq_id,
                               {argmax(result.logits.data() + s * result.vocab, result.vocab)}});
  return next;
}

}  // namespace moeflow::bench
