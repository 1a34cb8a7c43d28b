#include "actors/scheduler_actor.h"

#include <algorithm>
#include <utility>

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

// Removes the sequences marked done or cancelled and frees their caches (both, through the
// speculator, for a speculated one).
void retire(self_ptr self, const std::vector<uint64_t>& ids) {
  auto& st = self->state;
  for (uint64_t id : ids) {
    auto it = std::find_if(st.running.begin(), st.running.end(),
                           [id](const Sequence& s) { return s.seq_id == id; });
    if (it == st.running.end()) continue;
    if (it->speculated)
      self->send(st.options.speculator, release_atom::value, id);
    else
      self->send(st.router, release_atom::value, id);
    st.kv_reserved -= kv_need(*it);
    st.running.erase(it);
  }
  publish_queues(self);
}

Sequence* find_running(scheduler_state& st, uint64_t id) {
  auto it = std::find_if(st.running.begin(), st.running.end(),
                         [id](const Sequence& s) { return s.seq_id == id; });
  return it == st.running.end() ? nullptr : &*it;
}

// Streams one new token; true when it ends the request (which is then delivered).
bool take_token(const ModelConfig& cfg, Sequence& s, int32_t token) {
  s.result.tokens.push_back(token);
  if (s.sink) caf::anon_send(s.sink, token_atom::value, s.stream_id, token);
  if (s.request->stop_at_eos && is_eos(cfg, token)) {
    s.result.finish_reason = "stop";
  } else if (static_cast<int64_t>(s.result.tokens.size()) >= s.request->max_tokens) {
    s.result.finish_reason = "length";
  } else {
    s.pending = {token};
    return false;
  }
  deliver(s);
  return true;
}

void on_step_result(self_ptr self, const std::vector<std::pair<uint64_t, bool>>& stepped,
                    const StepResultPtr& result) {
  auto& st = self->state;
  std::vector<uint64_t> done;
  for (size_t i = 0; i < stepped.size(); ++i) {
    const auto [id, sampled] = stepped[i];
    Sequence* s = find_running(st, id);
    if (!s) continue;
    if (s->cancelled) {
      done.push_back(id);
      continue;
    }
    if (!sampled) continue;  // still prefilling: these logits are not for a new token
    const int32_t token =
        s->sampler.sample(result->logits.data() + i * result->vocab, result->vocab);
    if (s->speculated) s->decoded_here.push_back(token);
    if (take_token(st.config, *s, token)) done.push_back(id);
  }
  retire(self, done);
}

void on_round_result(self_ptr self, const SpeculativeRoundRequest& round,
                     const SpeculativeRoundResult& result) {
  auto& st = self->state;
  st.plain_ahead = result.plain_ahead;
  std::vector<uint64_t> done;
  for (size_t i = 0; i < round.sequences.size() && i < result.tokens.size(); ++i) {
    const uint64_t id = round.sequences[i].seq_id;
    Sequence* s = find_running(st, id);
    if (!s) continue;
    if (s->cancelled) {
      done.push_back(id);
      continue;
    }
    // Tokens after the one that ends the request are dropped.
    for (int32_t token : result.tokens[i])
      if (take_token(st.config, *s, token)) {
        done.push_back(id);
        break;
      }
  }
  retire(self, done);
}

// Every request among `ids` ends with `why` (cancelled ones just leave); the others go on.
void fail_all(self_ptr self, const std::vector<uint64_t>& ids, const std::string& why) {
  for (auto& s : self->state.running)
    if (std::find(ids.begin(), ids.end(), s.seq_id) != ids.end() && !s.cancelled) fail(s, why);
  retire(self, ids);
}

void step(self_ptr self);

// One reply (a router step or a speculative round) is in; the next step starts after the last.
void answered(self_ptr self) {
  if (--self->state.in_flight == 0) step(self);
}

bool speculating(const scheduler_state& st) {
  return st.options.speculator && st.options.speculative;
}

// Hands a sequence whose prompt is prefilled to the speculator.
void adopt(self_ptr self, Sequence& s) {
  auto& st = self->state;
  auto seq = std::make_shared<SpeculativeSequence>();
  seq->seq_id = s.seq_id;
  seq->tokens = s.request->prompt;
  seq->tokens.insert(seq->tokens.end(), s.result.tokens.begin(), s.result.tokens.end());
  seq->sampling = s.request->sampling;
  if (s.request->stop_at_eos)
    seq->stop_tokens.assign(st.config.eos_token_ids.begin(), st.config.eos_token_ids.end());
  self->send(st.options.speculator, adopt_atom::value, SpeculativeSequencePtr(std::move(seq)));
  s.speculated = true;
}

void send_round(self_ptr self, std::shared_ptr<SpeculativeRoundRequest> round) {
  auto& st = self->state;
  ++st.in_flight;
  // A round is up to γ draft steps and a verify step.
  const caf::timespan timeout = st.options.step_timeout * (kMaxDraftPositions + 2);
  self->request(st.options.speculator, timeout, round_atom::value,
                SpeculativeRoundRequestPtr(round))
      .then(
          [self, round](const SpeculativeRoundResultPtr& result) {
            on_round_result(self, *round, *result);
            answered(self);
          },
          [self, round](caf::error& err) {
            std::vector<uint64_t> ids;
            for (const SpeculativeRequest& r : round->sequences) ids.push_back(r.seq_id);
            fail_all(self, ids, describe(err));
            answered(self);
          });
}

// `for_speculator`: the step decodes speculated sequences in place of a round (plain_ahead);
// `steady`: it is decode steps only, so its time is a plain step's cost.
void send_step(self_ptr self, std::shared_ptr<StepRequest> request,
               std::vector<std::pair<uint64_t, bool>> stepped, bool for_speculator = false,
               bool steady = false) {
  auto& st = self->state;
  ++st.in_flight;
  const auto started = std::chrono::steady_clock::now();
  self->request(st.router, st.options.step_timeout, step_atom::value, StepRequestPtr(request))
      .then(
          [self, stepped, started, for_speculator, steady](const StepResultPtr& result) {
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            if (self->state.options.metrics) self->state.options.metrics->step_done(seconds);
            if (for_speculator) {
              ++self->state.plain_steps;
              if (steady) {
                ++self->state.timed_steps;
                self->state.timed_seconds += seconds;
              }
            }
            on_step_result(self, stepped, result);
            answered(self);
          },
          [self, stepped](caf::error& err) {
            // Every request in the failed step ends with the error; later ones still run.
            std::vector<uint64_t> ids;
            for (const auto& [id, sampled] : stepped) ids.push_back(id);
            fail_all(self, ids, describe(err));
            answered(self);
          });
}

void step(self_ptr self) {
  auto& st = self->state;
  if (st.in_flight > 0) return;
  std::vector<uint64_t> cancelled;
  for (const auto& s : st.running)
    if (s.cancelled) cancelled.push_back(s.seq_id);
  retire(self, cancelled);
  admit(self);
  publish_queues(self);
  if (st.running.empty()) return;
  auto request = std::make_shared<StepRequest>();
  auto round = std::make_shared<SpeculativeRoundRequest>();
  std::vector<std::pair<uint64_t, bool>> stepped;  // sequence, whether this step samples for it
  int64_t prefill_left = st.options.prefill_chunk;
  // The speculator expects plain decoding for a while: step its sequences here, saving its hops.
  const bool plain_here = speculating(st) && st.plain_ahead > 0;
  bool for_speculator = false, steady = true;
  for (auto& s : st.running) {
    const bool decoding = s.pending.size() == 1 && !s.result.tokens.empty();
    if (decoding && speculating(st)) {
      if (!s.speculated) adopt(self, s);
      if (plain_here) {
        for_speculator = true;
        request->sequences.push_back({s.seq_id, s.pending});
        s.pending.clear();
        stepped.emplace_back(s.seq_id, true);
        continue;
      }
      round->sequences.push_back(
          {s.seq_id, s.request->max_tokens - static_cast<int64_t>(s.result.tokens.size())});
      round->decoded.push_back(std::move(s.decoded_here));
      s.decoded_here.clear();
      continue;
    }
    if (!decoding) steady = false;
    if (s.speculated) {  // speculation was turned off: decode it plainly from here
      self->send(st.options.speculator, forget_atom::value, s.seq_id);
      s.speculated = false;
      s.decoded_here.clear();
    }
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
  // Both go out before either is answered: the router runs the prefill step between the
  // round's steps.
  if (plain_here) --st.plain_ahead;
  if (!round->sequences.empty()) {
    round->plain_steps = std::exchange(st.plain_steps, 0);
    round->timed_steps = std::exchange(st.timed_steps, 0);
    round->timed_seconds = std::exchange(st.timed_seconds, 0.0);
  }
  if (!request->sequences.empty())
    send_step(self, std::move(request), std::move(stepped), for_speculator,
              for_speculator && steady);
  if (!round->sequences.empty()) send_round(self, std::move(round));
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
        Sequence seq{0, request, Sampler({}), {}, {}, {}, {}, 0, false, false, {}};
        seq.promise = self->make_response_promise<GenerationResultPtr>();
        auto promise = seq.promise;
        std::string why;
        if (!enqueue(self, std::move(seq), &why)) promise.deliver(make_moeflow_error(why));
        return promise;
      },
      [self](stream_atom, uint64_t id, const GenerationRequestPtr& request,
             const caf::actor& sink) {
        Sequence seq{0, request, Sampler({}), {}, {}, {}, sink, id, false, false, {}};
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
      [self](configure_atom, const SpeculativeSettingsPtr& settings) {
        auto& o = self->state.options;
        o.speculative = settings->enabled;
        if (o.speculator) self->send(o.speculator, configure_atom::value, settings);
        step(self);
      },
  };
}

}  // namespace moeflow
