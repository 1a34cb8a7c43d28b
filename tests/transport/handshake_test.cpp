// Handshake: a peer serving another graph or model is refused with a message naming it and both
// hashes; a compatible one is accepted.
#include "transport/handshake.h"

#include <gtest/gtest.h>

#include <string>

namespace moeflow::transport {
namespace {

const Hello kOurs{"router-0", 1, 0x00000000deadbeef, 0x1111};

TEST(Handshake, AcceptsTheSameGraphAndModel) {
  EXPECT_EQ(check_peer(kOurs, Hello{"experts-a", 2, 0xdeadbeef, 0x1111}), std::nullopt);
}

TEST(Handshake, RefusesAnotherGraphNamingThePeerAndBothHashes) {
  const auto why = check_peer(kOurs, Hello{"experts-a", 2, 0xfeed, 0x1111});
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why,
            "peer experts-a: graph hash 0x000000000000feed differs from ours 0x00000000deadbeef "
            "(router-0)");
}

TEST(Handshake, RefusesAnotherModelAndADuplicateName) {
  const auto model = check_peer(kOurs, Hello{"experts-b", 2, 0xdeadbeef, 0x2222});
  ASSERT_TRUE(model.has_value());
  EXPECT_NE(model->find("peer experts-b: model hash 0x0000000000002222 differs"), std::string::npos)
      << *model;
  const auto same = check_peer(kOurs, Hello{"router-0", 2, 0xdeadbeef, 0x1111});
  ASSERT_TRUE(same.has_value());
  EXPECT_NE(same->find("same node name"), std::string::npos) << *same;
}

TEST(Handshake, WorksOnDecodedHellos) {
  const DecodeLimits limits;
  const DecodeResult r = decode(encode_hello({"experts-a", 2, 0xfeed, 0x1111}), limits);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_TRUE(check_peer(kOurs, std::get<Hello>(r.message->body)).has_value());
}

}  // namespace
}  // namespace moeflow::transport
