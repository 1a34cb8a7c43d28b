#include "transport/gpu_group_participant.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace moeflow::transport {

namespace {

std::string gen_text(uint64_t generation) {
  return "generation " + std::to_string(generation);
}

}  // namespace

GpuGroupParticipant::GpuGroupParticipant(std::string node, GpuRankFactory& factory, GpuGroupLog log)
    : node_(std::move(node)), factory_(factory), log_(gpu_group_log_or_stderr(std::move(log))) {}

GpuGroupParticipant::~GpuGroupParticipant() {
  for (LocalRank& r : ranks_)
    if (r.formed) r.formed->abort();
}

std::string GpuGroupParticipant::where(const LocalRank& r) const {
  return node_ + " cuda:" + std::to_string(r.device) + " (rank " + std::to_string(r.rank) + " of " +
         std::to_string(nranks_) + ", " + gen_text(generation_) + ")";
}

void GpuGroupParticipant::abort_all(const std::string& why) {
  for (LocalRank& r : ranks_) {
    if (!r.formed) continue;
    r.formed->abort();
    r.formed.reset();
    log_("aborted " + where(r) + ": " + why);
  }
}

std::optional<GpuGroupReady> GpuGroupParticipant::on_group(const GpuGroup& group) {
  if (group.generation <= generation_) {
    log_("gpu_group " + gen_text(group.generation) + " ignored: " + gen_text(generation_) +
         " was seen already");
    return std::nullopt;
  }
  // Before anything of the new generation starts: the old communicators may hang on a lost
  // peer, and a rank must not be in two generations' groups at once.
  abort_all("superseded by " + gen_text(group.generation));
  generation_ = group.generation;
  nranks_ = group.nranks();
  ranks_.clear();
  for (int r : group.ranks_of(node_))
    ranks_.push_back({r, group.members[static_cast<size_t>(r)].device, nullptr, ""});
  if (ranks_.empty()) {
    state_ = GpuGroupState::none;
    log_(gen_text(generation_) + ": " + node_ + " holds no rank");
    return std::nullopt;
  }
  state_ = GpuGroupState::forming;
  for (LocalRank& r : ranks_) {
    log_("forming " + where(r));
    try {
      factory_.start_forming(group, r.rank);
    } catch (const std::exception& e) {
      // The group cannot form without this rank: start no more.
      r.failure = std::string("could not start forming: ") + e.what();
      break;
    }
  }
  return answer_if_done();
}

GpuGroupParticipant::LocalRank* GpuGroupParticipant::find(uint64_t generation, int rank,
                                                          const char* event) {
  const std::string what =
      std::string(event) + " for rank " + std::to_string(rank) + " of " + gen_text(generation);
  if (generation != generation_) {
    log_(what + " dropped: " + gen_text(generation_) + " is the newest");
    return nullptr;
  }
  if (state_ != GpuGroupState::forming) {
    log_(what + " dropped: the generation is " + std::string(gpu_group_state_name(state_)));
    return nullptr;
  }
  const auto it = std::find_if(ranks_.begin(), ranks_.end(),
                               [&](const LocalRank& r) { return r.rank == rank; });
  if (it == ranks_.end() || it->formed || !it->failure.empty()) {
    log_(what + " dropped: " + node_ + " does not wait for that rank");
    return nullptr;
  }
  return &*it;
}

std::optional<GpuGroupReady> GpuGroupParticipant::rank_formed(uint64_t generation, int rank,
                                                              std::unique_ptr<GpuRank> formed) {
  if (!formed) return rank_failed(generation, rank, "the factory returned no communicator");
  LocalRank* r = find(generation, rank, "formed");
  if (!r) {
    formed->abort();
    return std::nullopt;
  }
  r->formed = std::move(formed);
  log_("formed " + where(*r));
  return answer_if_done();
}

std::optional<GpuGroupReady> GpuGroupParticipant::rank_failed(uint64_t generation, int rank,
                                                              std::string why) {
  LocalRank* r = find(generation, rank, "failure");
  if (!r) return std::nullopt;
  r->failure = why.empty() ? "forming failed (no reason given)" : std::move(why);
  return answer_if_done();
}

std::optional<GpuGroupReady> GpuGroupParticipant::answer_if_done() {
  if (state_ != GpuGroupState::forming) return std::nullopt;
  const auto failed = std::find_if(ranks_.begin(), ranks_.end(),
                                   [](const LocalRank& r) { return !r.failure.empty(); });
  const bool all_formed = std::all_of(ranks_.begin(), ranks_.end(),
                                      [](const LocalRank& r) { return r.formed != nullptr; });
  if (failed == ranks_.end() && !all_formed) return std::nullopt;

  GpuGroupReady ready{generation_, node_, {}};
  if (failed != ranks_.end()) {
    const std::string first = "cuda:" + std::to_string(failed->device);
    log_("failed " + where(*failed) + ": " + failed->failure);
    for (LocalRank& r : ranks_)
      if (!r.formed && r.failure.empty())
        r.failure = "abandoned while forming: " + first + " failed";
  }
  for (const LocalRank& r : ranks_) ready.devices.push_back({r.device, r.failure});
  if (failed != ranks_.end()) {
    state_ = GpuGroupState::failed;
    abort_all("cuda:" + std::to_string(failed->device) + " of this node failed to form");
  } else {
    state_ = GpuGroupState::formed;
    log_(gen_text(generation_) + ": every rank of " + node_ + " formed");
  }
  return ready;
}

void GpuGroupParticipant::end_group() {
  abort_all("the group ended");
  ranks_.clear();
  state_ = GpuGroupState::none;
}

GpuRank* GpuGroupParticipant::rank_on(int32_t device) const {
  if (state_ != GpuGroupState::formed) return nullptr;
  for (const LocalRank& r : ranks_)
    if (r.device == device) return r.formed.get();
  return nullptr;
}

}  // namespace moeflow::transport
