#include "actors/actor_system_setup.h"

namespace moeflow {

caf::error make_moeflow_error(const std::string& message) {
  return caf::make_error(caf::sec::runtime_error, message);
}

std::string describe(const caf::error& err) {
  if (!err) return "no error";
  const caf::message& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) return ctx.get_as<std::string>(0);
  if (err == caf::sec::request_timeout) return "request timed out";
  return caf::to_string(err);
}

}  // namespace moeflow
