#include "transport/gpu_group_controller.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "core/error.h"

namespace moeflow::transport {

namespace {

std::string gen_text(uint64_t generation) {
  return "generation " + std::to_string(generation);
}

std::string members_text(const std::vector<GpuGroupMember>& members) {
  std::string text;
  for (const GpuGroupMember& m : members)
    text += (text.empty() ? "" : ", ") + m.node + " cuda:" + std::to_string(m.device);
  return text.empty() ? "none" : text;
}

}  // namespace

GpuGroupController::GpuGroupController(UniqueIdMaker make_id, Now now,
                                       GpuGroupControllerOptions options, GpuGroupLog log)
    : make_id_(std::move(make_id)),
      now_(std::move(now)),
      options_(options),
      log_(gpu_group_log_or_stderr(std::move(log))) {
  if (options_.first_generation == 0)
    throw Error("GpuGroupController: first_generation 0 (generations start at 1)");
  generation_ = options_.first_generation - 1;
}

const GpuGroup* GpuGroupController::group() const {
  return state_ == GpuGroupState::forming || state_ == GpuGroupState::formed ? &current_ : nullptr;
}

GpuGroupStatus GpuGroupController::status() const {
  return {generation_, state_ == GpuGroupState::none ? 0 : current_.nranks(), state_};
}

std::string GpuGroupController::member_text(int rank) const {
  const GpuGroupMember& m = current_.members[static_cast<size_t>(rank)];
  return m.node + " cuda:" + std::to_string(m.device) + " (rank " + std::to_string(rank) + ")";
}

GpuGroupCommand GpuGroupController::apply_graph(const GraphSpec& graph) {
  graph_plan_ = plan_gpu_group(graph);
  return reconsider("graph applied", true);
}

GpuGroupCommand GpuGroupController::node_down(std::string_view node) {
  if (!down_.emplace(node).second) return {};
  if (state_ == GpuGroupState::none || current_.ranks_of(node).empty()) {
    log_("node " + std::string(node) + " is down; it holds no rank of " + gen_text(generation_) +
         ": the group stays");
    return {};
  }
  return reconsider("node " + std::string(node) + " is down", false);
}

GpuGroupCommand GpuGroupController::node_up(std::string_view node) {
  const auto it = down_.find(node);
  if (it == down_.end()) return {};
  down_.erase(it);
  return reconsider("node " + std::string(node) + " is up again", true);
}

std::vector<GpuGroupMember> GpuGroupController::wanted_members() const {
  GpuGroupPlan plan = graph_plan_;
  for (const std::string& node : down_) plan = plan_without_node(plan, node);
  return plan.members;
}

GpuGroupCommand GpuGroupController::reconsider(const std::string& cause, bool retry_failed) {
  std::vector<GpuGroupMember> members = wanted_members();
  const bool active = state_ != GpuGroupState::none;
  const bool same = active ? members == current_.members : members.size() < 2;
  if (same && !(retry_failed && state_ == GpuGroupState::failed)) return {};

  GpuGroupCommand command;
  if (members.size() < 2) {
    log_(cause + ": " + std::to_string(members.size()) + " GPU member(s) left (" +
         members_text(members) + "), no communicator; " + gen_text(generation_) + " ended");
    current_ = GpuGroup{};
    formed_.clear();
    failure_.clear();
    state_ = GpuGroupState::none;
    command.ended = true;
    return command;
  }
  current_ = GpuGroup{++generation_, {}, std::move(members)};
  formed_.assign(current_.members.size(), false);
  failure_.clear();
  try {
    current_.unique_id = make_id_();
  } catch (const std::exception& e) {
    fail(cause + ": making the NCCL unique id: " + e.what());
    return command;
  }
  state_ = GpuGroupState::forming;
  deadline_ = now_() + options_.forming_timeout;
  log_(cause + ": announcing " + gen_text(generation_) + ", " + std::to_string(current_.nranks()) +
       " ranks: " + members_text(current_.members));
  command.announce = current_;
  return command;
}

void GpuGroupController::fail(std::string why) {
  state_ = GpuGroupState::failed;
  failure_ = std::move(why);
  log_(gen_text(generation_) + " failed: " + failure_ +
       "; batches between GPU shards stay on ZeroMQ");
}

void GpuGroupController::answer(const GpuGroupReady& ready) {
  const std::string from =
      "gpu_group_ready from " + ready.node + " for " + gen_text(ready.generation);
  if (state_ == GpuGroupState::none || ready.generation != current_.generation) {
    log_(from + " ignored: the current one is " + gen_text(generation_) +
         (state_ == GpuGroupState::none ? " (no group)" : ""));
    return;
  }
  if (current_.ranks_of(ready.node).empty()) {
    log_(from + " ignored: " + ready.node + " holds no rank of it");
    return;
  }
  if (state_ != GpuGroupState::forming) {
    log_(from + " ignored: it is " + std::string(gpu_group_state_name(state_)) + " already");
    return;
  }
  std::string failures;
  for (const GpuDeviceOutcome& d : ready.devices) {
    const int rank = [&] {
      for (int r : current_.ranks_of(ready.node))
        if (current_.members[static_cast<size_t>(r)].device == d.device) return r;
      return -1;
    }();
    if (rank < 0) {
      log_(from + ": " + ready.node + " cuda:" + std::to_string(d.device) +
           " is not a member; ignored");
      continue;
    }
    if (d.formed())
      formed_[static_cast<size_t>(rank)] = true;
    else
      failures += (failures.empty() ? "" : "; ") + member_text(rank) + ": " + d.failure;
  }
  if (!failures.empty()) return fail(failures);
  if (std::all_of(formed_.begin(), formed_.end(), [](bool f) { return f; })) {
    state_ = GpuGroupState::formed;
    log_(gen_text(generation_) + " formed: " + std::to_string(current_.nranks()) + " ranks on " +
         std::to_string(current_.nodes().size()) + " nodes");
  }
}

void GpuGroupController::tick() {
  if (state_ != GpuGroupState::forming || now_() < deadline_) return;
  std::string waiting;
  for (size_t r = 0; r < formed_.size(); ++r)
    if (!formed_[r]) waiting += (waiting.empty() ? "" : ", ") + member_text(static_cast<int>(r));
  fail("not formed within " + std::to_string(options_.forming_timeout.count()) +
       " ms; no answer for " + waiting);
}

}  // namespace moeflow::transport
