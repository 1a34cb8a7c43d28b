// graph_hash: the same graph written differently hashes the same; any change of meaning does not.
#include <gtest/gtest.h>

#include "graph/graph.h"

namespace moeflow {
namespace {

const std::string kGraph =
    "[model]\npath = \"../m\"\n"
    "[nodes.r]\nhost = \"10.0.0.1\"\ncontrol_port = 5550\ndata_port = 5551\nrouter = true\n"
    "[nodes.e]\nhost = \"10.0.0.2\"\ncontrol_port = 5550\ndata_port = 5551\n"
    "[shards.a]\nnode = \"e\"\nexperts = \"0-3\"\n"
    "[shards.b]\nnode = \"r\"\nexperts = \"4-7\"\nlayers = \"all\"\n";

uint64_t hash_of(const std::string& text, const std::string& file = "g.toml") {
  return graph_hash(parse_graph(text, file));
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  return text.replace(text.find(from), from.size(), to);
}

TEST(GraphHash, StableUnderLayoutCommentsOrderAndSpelling) {
  const uint64_t h = hash_of(kGraph);
  EXPECT_EQ(h, hash_of(kGraph));
  // Comments, blank lines, spacing, table and key order, equivalent spellings.
  const std::string reformatted =
      "# the cluster\n\n"
      "[shards.b]   # second shard first\n"
      "layers='all'\nexperts = \"6-7, 4 - 5\"\nnode = 'r'\n\n"
      "[model]\n  path   =   \"../m\"\n  dtype = \"auto\"   # the default, spelt out\n"
      "[nodes.e]\ndata_port = 5_551\ncontrol_port = 0x15AE\nhost = \"10.0.0.2\"\nrouter = false\n"
      "[shards.a]\nexperts = \"0,1,2,3\"\nnode = \"e\"\n"
      "[nodes.r]\nrouter = true\nhost = \"10.0.0.1\"\ndata_port = 5551\ncontrol_port = 5550\n"
      "[timeouts]\nheartbeat_ms = 500\n";
  EXPECT_EQ(h, hash_of(reformatted));
  // Where the file lies does not matter; the model path is hashed as written.
  EXPECT_EQ(h, hash_of(kGraph, "/etc/moeflow/cluster.toml"));
}

TEST(GraphHash, ChangesWithMeaning) {
  const uint64_t h = hash_of(kGraph);
  EXPECT_NE(h, hash_of(replaced(kGraph, "\"0-3\"", "\"0-2\"")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "\"4-7\"\nlayers = \"all\"", "\"4-7\"\nlayers = \"0-1\"")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "10.0.0.2", "10.0.0.3")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "data_port = 5551\nrouter", "data_port = 5552\nrouter")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "node = \"e\"", "node = \"r\"")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "[shards.a]", "[shards.c]")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "../m", "../n")));
  EXPECT_NE(h, hash_of(kGraph + "[timeouts]\nrequest_ms = 9000\n"));
  EXPECT_NE(h, hash_of(kGraph + "[api]\nport = 8001\n"));
  EXPECT_NE(h, hash_of(kGraph + "[metrics]\nport = 9200\n"));
  EXPECT_NE(h, hash_of(replaced(kGraph, "[shards.a]", "metrics_port = 9101\n[shards.a]")));
  EXPECT_NE(h, hash_of(replaced(kGraph, "\"../m\"", "\"../m\"\ndtype = \"bf16\"")));
  // "all" and an explicit list are different graphs (they differ once the model changes).
  EXPECT_NE(h, hash_of(replaced(kGraph, "\"0-3\"", "\"all\"")));
}

}  // namespace
}  // namespace moeflow
