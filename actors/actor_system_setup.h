#pragma once
// The CAF configuration every moeflow process (and test fixture) uses: it registers moeflow's
// message types. Keep CAF setup here and in actors/messages.h only.
#include <caf/all.hpp>
#include <string>

#include "actors/messages.h"

namespace moeflow {

class ActorSystemConfig : public caf::actor_system_config {
 public:
  ActorSystemConfig() { add_message_types<caf::id_block::moeflow>(); }
};

// The text a moeflow actor put in an error (or CAF's rendering of a system error).
std::string describe(const caf::error& err);

// An error carrying a moeflow message, for response promises.
caf::error make_moeflow_error(const std::string& message);

}  // namespace moeflow
