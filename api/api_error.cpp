#include "api/api_error.h"

#include <nlohmann/json.hpp>

namespace moeflow::api {

ApiError invalid_request(const std::string& message, const std::string& param,
                         const std::string& code) {
  return ApiError(400, "invalid_request_error", message, param, code);
}

std::string error_body(const ApiError& e) {
  nlohmann::json body = {{"error",
                          {{"message", e.what()},
                           {"type", e.type},
                           {"param", e.param.empty() ? nlohmann::json() : nlohmann::json(e.param)},
                           {"code", e.code.empty() ? nlohmann::json() : nlohmann::json(e.code)}}}};
  return body.dump();
}

}  // namespace moeflow::api
