#include "transport/endpoint.h"

#include <cctype>
#include <charconv>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"

namespace moeflow::transport {
namespace {

bool is_ipv6_literal(std::string_view host) {
  if (host.find(':') == std::string_view::npos) return false;
  for (char c : host)
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return false;
  return true;
}

// Host names per RFC 1123 (letters, digits, '-' and '.'), which covers IPv4 addresses too.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  return host.front() != '-' && host.front() != '.';
}

void check_host(std::string_view host, std::string_view context) {
  if (host == "*" || is_ipv6_literal(host) || is_host_name(host)) return;
  throw Error("endpoint \"" + std::string(context) + "\": host \"" + std::string(host) +
              "\" is not a host name, an IP address or \"*\"");
}

}  // namespace

std::string format_tcp_endpoint(const TcpEndpoint& endpoint) {
  const bool v6 = is_ipv6_literal(endpoint.host);
  const std::string host = v6 ? "[" + endpoint.host + "]" : endpoint.host;
  const std::string text =
      "tcp://" + host + ":" + (endpoint.port == 0 ? "*" : std::to_string(endpoint.port));
  check_host(endpoint.host, text);
  return text;
}

TcpEndpoint parse_tcp_endpoint(std::string_view text) {
  const auto fail = [&](const std::string& why) {
    return Error("endpoint \"" + std::string(text) + "\": " + why);
  };
  constexpr std::string_view kScheme = "tcp://";
  if (text.substr(0, kScheme.size()) != kScheme) throw fail("must start with tcp://");
  const std::string_view rest = text.substr(kScheme.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) throw fail("no port (tcp://host:port)");
  std::string_view host = rest.substr(0, colon);
  const std::string_view port = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (!is_ipv6_literal(host))
      throw fail("\"[" + std::string(host) + "]\" is not an IPv6 address");
  } else if (host.find(':') != std::string_view::npos) {
    throw fail("IPv6 addresses go in brackets: tcp://[::1]:5555");
  }
  TcpEndpoint endpoint;
  endpoint.host = std::string(host);
  check_host(endpoint.host, text);
  if (port == "*") return endpoint;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535)
    throw fail("port \"" + std::string(port) + "\" is not 1..65535 or *");
  endpoint.port = static_cast<uint16_t>(value);
  return endpoint;
}

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("free_loopback_port: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) throw Error("free_loopback_port: no port available on 127.0.0.1");
  return ntohs(addr.sin_port);
}

}  // namespace moeflow::transport
