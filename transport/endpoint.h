#pragma once
// ZeroMQ TCP endpoints ("tcp://host:port"): built from and parsed into their parts, validated, so
// a typo in a graph file is an error naming the endpoint instead of a socket that never connects.
#include <cstdint>
#include <string>
#include <string_view>

namespace moeflow::transport {

struct TcpEndpoint {
  std::string host;   // a host name, an IPv4 address, an IPv6 address (without brackets), or "*"
  uint16_t port = 0;  // 0: any free port ("*", bind only); the bound one is in ZMQ_LAST_ENDPOINT
};

// "tcp://host:port", with IPv6 addresses in brackets; throws moeflow::Error on an invalid host.
std::string format_tcp_endpoint(const TcpEndpoint& endpoint);
inline std::string tcp_endpoint(std::string_view host, uint16_t port) {
  return format_tcp_endpoint({std::string(host), port});
}

// Parses "tcp://host:port" (port "*" = 0); throws moeflow::Error quoting the text and the problem.
TcpEndpoint parse_tcp_endpoint(std::string_view text);

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick), for tests and
// benchmarks that start their own nodes.
int free_loopback_port();

}  // namespace moeflow::transport
