// Endpoints: built and parsed both ways; typos are errors quoting the endpoint.
#include "transport/endpoint.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace moeflow::transport {
namespace {

TEST(Endpoint, FormatsHostsAndPorts) {
  EXPECT_EQ(tcp_endpoint("127.0.0.1", 5555), "tcp://127.0.0.1:5555");
  EXPECT_EQ(tcp_endpoint("node-3.cluster", 80), "tcp://node-3.cluster:80");
  EXPECT_EQ(tcp_endpoint("127.0.0.1", 0), "tcp://127.0.0.1:*");
  EXPECT_EQ(tcp_endpoint("*", 7000), "tcp://*:7000");
  EXPECT_EQ(tcp_endpoint("::1", 7000), "tcp://[::1]:7000");
  EXPECT_THROW(tcp_endpoint("", 1), Error);
  EXPECT_THROW(tcp_endpoint("bad host", 1), Error);
  EXPECT_THROW(tcp_endpoint("tcp://x", 1), Error);
}

TEST(Endpoint, ParsesWhatItFormats) {
  for (const char* text : {"tcp://127.0.0.1:5555", "tcp://node-3.cluster:80", "tcp://*:7000",
                           "tcp://[::1]:7000", "tcp://127.0.0.1:*"}) {
    const TcpEndpoint e = parse_tcp_endpoint(text);
    EXPECT_EQ(format_tcp_endpoint(e), text);
  }
  const TcpEndpoint v6 = parse_tcp_endpoint("tcp://[fe80::1]:65535");
  EXPECT_EQ(v6.host, "fe80::1");
  EXPECT_EQ(v6.port, 65535);
}

TEST(Endpoint, RefusesTyposWithTheEndpointQuoted) {
  for (const char* text :
       {"127.0.0.1:5555", "udp://127.0.0.1:5555", "tcp://127.0.0.1", "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:65536", "tcp://127.0.0.1:55x", "tcp://127.0.0.1:", "tcp://:5555",
        "tcp://::1:5555", "tcp://[zz]:5555", "tcp://a b:1"}) {
    try {
      parse_tcp_endpoint(text);
      ADD_FAILURE() << text << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace moeflow::transport
