#include "actors/scheduler_actor.h"

#include <algorithm>

#include "actors/actor_system_setup.h"
#include "core/error.h"

namespace moeflow {
namespace {

using self_ptr = scheduler_actor::stateful_pointer<scheduler_state>;

bool is_eos(const ModelConfig& cfg, int32_t token) {
  return std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), token) !=
         cfg.eos_token_ids.end();
}

// Removes finished sequences (delivering their results) and frees their caches.
void retire(self_ptr self, const std::vector<uint64_t>& done) {
  auto& running = self->state.running;
  for (uint64_t id : done) {
    auto it = std::find_if(running.begin(), running.end(),
                           [id](const auto& s) { return s.seq_id == id; });
    if (it == running.end()) continue;
    self->send(self->state.router, release_atom::value, id);
    running.erase(it);
  }
}

void on_step_result(self_ptr self, const std::vector<uint64_t>& stepped,
                    const StepResultPtr& result) {
  auto& st = self->state;
  std::vector<uint64_t> done;
  for (size_t i = 0; i < stepped.size(); ++i) {
    auto it = std::find_if(st.running.begin(), st.running.end(),
                           [&](const auto& s) { return s.seq_id == stepped[i]; });
    if (it == st.running.end()) continue;
    const int32_t token =
        it->sampler.sample(result->logits.data() + i * result->vocab, result->vocab);
    it->result.tokens.push_back(token);
    if (it->request->stop_at_eos && is_eos(st.config, token)) {
      it->result.finish_reason = "stop";
    } else if (static_cast<int64_t>(it->result.tokens.size()) >= it->request->max_tokens) {
      it->result.finish_reason = "length";
    } else {
      it->next = {token};
      continue;
    }
    it->promise.deliver(std::make_shared<const GenerationResult>(it->result));
    done.push_back(it->seq_id);
  }
  retire(self, done);
}

void step(self_ptr self) {
  auto& st = self->state;
  if (st.stepping || st.running.empty()) return;
  auto request = std::make_shared<StepRequest>();
  std::vector<uint64_t> stepped;
  for (const auto& s : st.running) {
    request->sequences.push_back({s.seq_id, s.next});
    stepped.push_back(s.seq_id);
  }
  st.stepping = true;
  self->request(st.router, st.options.step_timeout, step_atom::value, StepRequestPtr(request))
      .then(
          [self, stepped](const StepResultPtr& result) {
            on_step_result(self, stepped, result);
            self->state.stepping = false;
            step(self);
          },
          [self, stepped](caf::error& err) {
            // Every request in the failed step ends with the error; later ones still run.
            for (auto& s : self->state.running)
              if (std::find(stepped.begin(), stepped.end(), s.seq_id) != stepped.end())
                s.promise.deliver(make_moeflow_error(describe(err)));
            retire(self, stepped);
            self->state.stepping = false;
            step(self);
          });
}

}  // namespace

scheduler_actor::behavior_type make_scheduler(
    scheduler_actor::stateful_pointer<scheduler_state> self, router_actor router,
    ModelConfig config, SchedulerOptions options) {
  self->state.router = std::move(router);
  self->state.config = std::move(config);
  self->state.options = options;
  return {
      [self](generate_atom,
             const GenerationRequestPtr& request) -> caf::result<GenerationResultPtr> {
        const ModelConfig& cfg = self->state.config;
        try {
          if (request->prompt.empty()) throw Error("empty prompt");
          if (request->max_tokens < 1) throw Error("max_tokens must be at least 1");
          for (int32_t t : request->prompt)
            if (t < 0 || t >= cfg.vocab_size)
              throw Error("token id " + std::to_string(t) + " is outside the vocabulary (size " +
                          std::to_string(cfg.vocab_size) + ")");
          validate(request->sampling);
        } catch (const Error& e) {
          return make_moeflow_error(e.what());
        }
        scheduler_state::Sequence seq{
            self->state.next_seq_id++,  request,
            Sampler(request->sampling), request->prompt,
            GenerationResult{},         self->make_response_promise<GenerationResultPtr>()};
        auto promise = seq.promise;
        self->state.running.push_back(std::move(seq));
        self->send(self, tick_atom::value);
        return promise;
      },
      [self](tick_atom) { step(self); },
  };
}

}  // namespace moeflow
