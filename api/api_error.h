#pragma once
// An error the HTTP API answers with: its status code and the OpenAI error body
// {"error": {"message", "type", "param", "code"}}.
#include <stdexcept>
#include <string>

namespace moeflow::api {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string type, const std::string& message, std::string param = {},
           std::string code = {})
      : std::runtime_error(message),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}

  int status;
  std::string type;   // invalid_request_error, authentication_error, ...
  std::string param;  // the offending request field, if any
  std::string code;   // e.g. model_not_found, context_length_exceeded
};

// 400 invalid_request_error naming the parameter.
ApiError invalid_request(const std::string& message, const std::string& param = {},
                         const std::string& code = {});

std::string error_body(const ApiError& e);

}  // namespace moeflow::api
