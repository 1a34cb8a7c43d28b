#include "actors/scheduler_actor.h"

#include <algorithm>

#include "actors/actor_system_setup.h"
#include "core/error.h"

namespace moeflow {
namespace {

using self_ptr = scheduler_actor::stateful_pointer<scheduler_state>;
using Sequence = scheduler_state::Sequence;

bool is_eos(const ModelConfig& cfg, int32_t token) {
  return std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), token) !=
         cfg.eos_token_ids.end();
}

int64_t kv_need(const Sequence& s) {
  return static_cast<int64_t>(s.request->prompt.size()) + s.request->max_tokens;
}

// Throws moeflow::Error describing what is wrong with the request.
void check_request(const ModelConfig& cfg, const SchedulerOptions& options,
                   const GenerationRequest& r) {
  if (r.prompt.empty()) throw Error("empty prompt");
  if (r.max_tokens < 1) throw Error("max_tokens must be at least 1");
  for (int32_t t : r.prompt)
    if (t < 0 || t >= cfg.vocab_size)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary (size " +
                  std::to_string(cfg.vocab_size) + ")");
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
  if (total > cfg.max_position_embeddings)
    throw Error("prompt (" + std::to_string(r.prompt.size()) + " tokens) + max_tokens (" +
                std::to_string(r.max_tokens) + ") exceeds the context length of " +
                std::to_string(cfg.max_position_embeddings));
  if (total > options.kv_budget_tokens)
    throw Error("prompt + max_tokens (" + std::to_string(total) +
                ") exceeds the KV-cache budget of " + std::to_string(options.kv_budget_tokens) +
                " tokens");
  validate(r.sampling);
}

void deliver(Sequence& s) {
  auto result = std::make_shared<const GenerationResult>(s.result);
  if (s.sink)
    caf::anon_send(s.sink, done_atom::value, s.stream_id, GenerationResultPtr(result));
  else
    s.promise.deliver(GenerationResultPtr(result));
}

void fail(Sequence& s, const std::string& why) {
  if (s.sink)
    caf::anon_send(s.sink, fail_atom::value, s.stream_id, why);
  else
    s.promise.deliver(make_moeflow_error(why));
}

void publish_queues(self_ptr self) {
  auto& st = self->state;
  if (st.options.metrics)
    st.options.metrics->queues(static_cast<int64_t>(st.running.size()),
                               static_cast<int64_t>(st.waiting.size()), st.kv_reserved);
}

// Moves waiting requests into the batch while there is room.
void admit(self_ptr self) {
  auto& st = self->state;
  while (!st.waiting.empty() && static_cast<int64_t>(st.running.size()) < st.options.max_running &&
         st.kv_reserved + kv_need(st.waiting.front()) <= st.options.kv_budget_tokens) {
    st.kv_reserved += kv_need(st.waiting.front());
    st.running.push_back(std::move(st.waiting.front()));
    st.waiting.pop_front();
  }
}

// Removes the sequences marked done or cancelled and frees their caches.
void retire(self_ptr self, const std::vector<uint64_t>& ids) {
  auto& st = self->state;
  for (uint64_t id : ids) {
    auto it = std::find_if(st.running.begin(), st.running.end(),
                           [id](const Sequence& s) { return s.seq_id == id; });
    if (it == st.running.end()) continue;
    self->send(st.router, release_atom::value, id);
    st.kv_reserved -= kv_need(*it);
    st.running.erase(it);
  }
  publish_queues(self);
}

void on_step_result(self_ptr self, const std::vector<std::pair<uint64_t, bool>>& stepped,
                    const StepResultPtr& result) {
  auto& st = self->state;
  std::vector<uint64_t> done;
  for (size_t i = 0; i < stepped.size(); ++i) {
    const auto [id, sampled] = stepped[i];
    auto it = std::find_if(st.running.begin(), st.running.end(),
                           [id = id](const Sequence& s) { return s.seq_id == id; });
    if (it == st.running.end()) continue;
    if (it->cancelled) {
      done.push_back(id);
      continue;
    }
    if (!sampled) continue;  // still prefilling: these logits are not for a new token
    const int32_t token =
        it->sampler.sample(result->logits.data() + i * result->vocab, result->vocab);
    it->result.tokens.push_back(token);
    if (it->sink) caf::anon_send(it->sink, token_atom::value, it->stream_id, token);
    if (it->request->stop_at_eos && is_eos(st.config, token)) {
      it->result.finish_reason = "stop";
    } else if (static_cast<int64_t>(it->result.tokens.size()) >= it->request->max_tokens) {
      it->result.finish_reason = "length";
    } else {
      it->pending = {token};
      continue;
    }
    deliver(*it);
    done.push_back(id);
  }
  retire(self, done);
}

void step(self_ptr self) {
  auto& st = self->state;
  if (st.stepping) return;
  std::vector<uint64_t> cancelled;
  for (const auto& s : st.running)
    if (s.cancelled) cancelled.push_back(s.seq_id);
  retire(self, cancelled);
  admit(self);
  publish_queues(self);
  if (st.running.empty()) return;
  auto request = std::make_shared<StepRequest>();
  std::vector<std::pair<uint64_t, bool>> stepped;  // sequence, whether this step samples for it
  int64_t prefill_left = st.options.prefill_chunk;
  for (auto& s : st.running) {
    const bool decoding = s.pending.size() == 1 && !s.result.tokens.empty();
    int64_t take = static_cast<int64_t>(s.pending.size());
    if (!decoding) {
      if (prefill_left <= 0) continue;  // this prompt waits for the next step
      take = std::min(take, prefill_left);
      prefill_left -= take;
    }
    request->sequences.push_back({s.seq_id, {s.pending.begin(), s.pending.begin() + take}});
    s.pending.erase(s.pending.begin(), s.pending.begin() + take);
    stepped.emplace_back(s.seq_id, s.pending.empty());
  }
  st.stepping = true;
  const auto started = std::chrono::steady_clock::now();
  self->request(st.router, st.options.step_timeout, step_atom::value, StepRequestPtr(request))
      .then(
          [self, stepped, started](const StepResultPtr& result) {
            if (self->state.options.metrics)
              self->state.options.metrics->step_done(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                      .count());
            on_step_result(self, stepped, result);
            self->state.stepping = false;
            step(self);
          },
          [self, stepped](caf::error& err) {
            // Every request in the failed step ends with the error; later ones still run.
            std::vector<uint64_t> ids;
            for (auto& s : self->state.running)
              for (const auto& [id, sampled] : stepped)
                if (s.seq_id == id) {
                  if (!s.cancelled) fail(s, describe(err));
                  ids.push_back(id);
                }
            retire(self, ids);
            self->state.stepping = false;
            step(self);
          });
}

// Queues a checked request; false (with the reason) when it is refused.
bool enqueue(self_ptr self, Sequence seq, std::string* why) {
  auto& st = self->state;
  try {
    check_request(st.config, st.options, *seq.request);
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
  if (static_cast<int64_t>(st.waiting.size()) >= st.options.max_waiting) {
    *why = std::string(kOverloadedPrefix) + std::to_string(st.waiting.size()) +
           " requests are already waiting";
    if (st.options.metrics) st.options.metrics->refused();
    return false;
  }
  seq.seq_id = st.next_seq_id++;
  seq.sampler = Sampler(seq.request->sampling);
  seq.pending = seq.request->prompt;
  st.waiting.push_back(std::move(seq));
  publish_queues(self);
  self->send(self, tick_atom::value);
  return true;
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
        Sequence seq{0, request, Sampler({}), {}, {}, {}, {}, 0, false};
        seq.promise = self->make_response_promise<GenerationResultPtr>();
        auto promise = seq.promise;
        std::string why;
        if (!enqueue(self, std::move(seq), &why)) promise.deliver(make_moeflow_error(why));
        return promise;
      },
      [self](stream_atom, uint64_t id, const GenerationRequestPtr& request,
             const caf::actor& sink) {
        Sequence seq{0, request, Sampler({}), {}, {}, {}, sink, id, false};
        std::string why;
        if (!enqueue(self, std::move(seq), &why)) caf::anon_send(sink, fail_atom::value, id, why);
      },
      [self](cancel_atom, uint64_t id) {
        auto& st = self->state;
        for (auto it = st.waiting.begin(); it != st.waiting.end(); ++it)
          if (it->sink && it->stream_id == id) {
            st.waiting.erase(it);
            publish_queues(self);
            return;
          }
        for (auto& s : st.running)
          if (s.sink && s.stream_id == id) s.cancelled = true;  // leaves at the next step
        self->send(self, tick_atom::value);
      },
      [self](tick_atom) { step(self); },
      [self](configure_atom, int64_t max_running, int64_t max_waiting, int64_t kv_budget_tokens,
             int64_t prefill_chunk) {
        auto& o = self->state.options;
        o.max_running = max_running;
        o.max_waiting = max_waiting;
        o.kv_budget_tokens = kv_budget_tokens;
        o.prefill_chunk = prefill_chunk;
        if (o.metrics) o.metrics->limits(max_running, max_waiting, kv_budget_tokens);
        step(self);  // admits what the new limits allow
      },
  };
}

}  // namespace moeflow
