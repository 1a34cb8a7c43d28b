#include "tests/support/scheduler_client.h"

#include "actors/actor_system_setup.h"

namespace moeflow::test_support {

std::vector<Outcome> run_requests(caf::actor_system& system, const scheduler_actor& scheduler,
                                  const std::vector<GenerationRequest>& requests,
                                  std::chrono::milliseconds timeout) {
  caf::scoped_actor self{system};
  using handle_t =
      decltype(self->request(scheduler, timeout, generate_atom::value, GenerationRequestPtr()));
  std::vector<handle_t> handles;
  for (const auto& r : requests)
    handles.push_back(self->request(scheduler, timeout, generate_atom::value,
                                    GenerationRequestPtr(std::make_shared<GenerationRequest>(r))));
  std::vector<Outcome> outcomes(requests.size());
  for (size_t i = 0; i < handles.size(); ++i)
    handles[i].receive([&](const GenerationResultPtr& r) { outcomes[i].result = *r; },
                       [&](caf::error& err) { outcomes[i].error = describe(err); });
  return outcomes;
}

std::vector<GenerationRequest> greedy_requests(const std::vector<std::vector<int32_t>>& prompts,
                                               int64_t max_tokens) {
  std::vector<GenerationRequest> out;
  for (const auto& p : prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.max_tokens = max_tokens;
    out.push_back(r);
  }
  return out;
}

}  // namespace moeflow::test_support
