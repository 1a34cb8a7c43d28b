// parse_graph: the short and explicit forms, and each schema error with its message and its
// line:col. (Checks against the model are in graph_validator_test.cpp.)
#include <gtest/gtest.h>

#include "tests/graph/graph_test_util.h"

namespace moeflow {
namespace {

using test_support::has_error;
using test_support::has_hint;
using test_support::parse_errors;

// A valid explicit graph whose lines the tests below edit; line numbers are in the comments.
const std::string kExplicit =
    "[model]\n"                    // 1
    "path = \"models/mixtral\"\n"  // 2
    "\n"                           // 3
    "[nodes.router]\n"             // 4
    "host = \"10.0.0.1\"\n"        // 5
    "control_port = 5550\n"        // 6
    "data_port = 5551\n"           // 7
    "router = true\n"              // 8
    "\n"                           // 9
    "[nodes.gpu-1]\n"              // 10
    "host = \"10.0.0.2\"\n"        // 11
    "control_port = 5550\n"        // 12
    "data_port = 5551\n"           // 13
    "\n"                           // 14
    "[shards.a]\n"                 // 15
    "node = \"gpu-1\"\n"           // 16
    "layers = \"0-1\"\n"           // 17
    "experts = \"0-3,6\"\n"        // 18
    "device = \"cuda:1\"\n"        // 19
    "\n"                           // 20
    "[shards.b]\n"                 // 21
    "node = \"router\"\n"          // 22
    "experts = \"all\"\n";         // 23

// `text` with `from` (which must occur once) replaced by `to`.
std::string edited(const std::string& from, const std::string& to, std::string text = kExplicit) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(GraphParser, ShortFormIsOneImplicitNodeWithOneShardOfEverything) {
  const GraphSpec g = parse_graph("[model]\npath = \"../tests/golden/mixtral\"\n",
                                  "/srv/moeflow/configs/local.toml");
  EXPECT_TRUE(g.implicit_node);
  EXPECT_EQ(g.model.path, std::filesystem::path("/srv/moeflow/tests/golden/mixtral"));
  EXPECT_EQ(g.model.path_text, "../tests/golden/mixtral");
  EXPECT_EQ(g.model.dtype, "auto");
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].name, "local");
  EXPECT_EQ(g.nodes[0].host, "127.0.0.1");
  EXPECT_TRUE(g.nodes[0].router);
  EXPECT_EQ(&g.router_node(), &g.nodes[0]);
  ASSERT_EQ(g.shards.size(), 1u);
  EXPECT_EQ(g.shards[0].node, "local");
  EXPECT_TRUE(g.shards[0].all_layers);
  EXPECT_TRUE(g.shards[0].all_experts);
  EXPECT_EQ(g.shards[0].device, "cpu");
  EXPECT_EQ(g.api.host, "127.0.0.1");
  EXPECT_EQ(g.api.port, 8000);
  EXPECT_EQ(g.metrics.port, 9100);
  EXPECT_EQ(g.timeouts.heartbeat_ms, 500);
  EXPECT_EQ(g.timeouts.peer_down_ms, 2000);
  EXPECT_EQ(g.timeouts.request_ms, 10000);
}

TEST(GraphParser, ShortFormMaySplitExpertsOverDevicesWithoutNodes) {
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\ndtype = \"bf16\"\n"
      "[shards.gpu0]\nexperts = \"0-3\"\ndevice = \"cuda:0\"\n"
      "[shards.gpu1]\nnode = \"local\"\nexperts = \"4-7\"\ndevice = \"cuda:1\"\n",
      "g.toml");
  EXPECT_EQ(g.model.dtype, "bf16");
  ASSERT_EQ(g.shards.size(), 2u);
  EXPECT_EQ(g.shards[0].node, "local");
  EXPECT_EQ(g.shards[1].device, "cuda:1");
  EXPECT_EQ(g.shards_on("local").size(), 2u);
}

TEST(GraphParser, ExplicitFormReadsEveryField) {
  const GraphSpec g = parse_graph(kExplicit + "[api]\nhost = \"0.0.0.0\"\nport = 8080\n" +
                                      "[metrics]\nport = 9200\n" +
                                      "[timeouts]\nheartbeat_ms = 100\npeer_down_ms = 400\n",
                                  "g.toml");
  EXPECT_FALSE(g.implicit_node);
  ASSERT_EQ(g.nodes.size(), 2u);
  const NodeSpec* gpu = g.find_node("gpu-1");
  ASSERT_TRUE(gpu);
  EXPECT_EQ(gpu->host, "10.0.0.2");
  EXPECT_EQ(gpu->control_port, 5550);
  EXPECT_EQ(gpu->data_port, 5551);
  EXPECT_FALSE(gpu->router);
  EXPECT_EQ(gpu->where.line, 10);
  EXPECT_EQ(g.router_node().name, "router");
  EXPECT_EQ(g.find_node("nope"), nullptr);

  ASSERT_EQ(g.shards.size(), 2u);
  const ShardSpec& a = g.shards[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.node, "gpu-1");
  EXPECT_FALSE(a.all_layers);
  EXPECT_EQ(a.layers, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(a.experts, (std::vector<int64_t>{0, 1, 2, 3, 6}));
  EXPECT_EQ(a.device, "cuda:1");
  EXPECT_EQ(a.experts_where.line, 18);
  EXPECT_EQ(a.experts_where.column, 11);
  EXPECT_TRUE(a.owns(1, 6));
  EXPECT_FALSE(a.owns(2, 6));
  EXPECT_FALSE(a.owns(1, 5));
  const ShardSpec& b = g.shards[1];
  EXPECT_TRUE(b.all_layers);  // layers defaults to all
  EXPECT_TRUE(b.all_experts);
  EXPECT_EQ(b.device, "cpu");

  EXPECT_EQ(g.api.host, "0.0.0.0");
  EXPECT_EQ(g.api.port, 8080);
  EXPECT_EQ(g.metrics.port, 9200);
  EXPECT_EQ(g.timeouts.heartbeat_ms, 100);
  EXPECT_EQ(g.timeouts.peer_down_ms, 400);
  EXPECT_EQ(g.timeouts.request_ms, 10000);
}

TEST(GraphParser, ShardsAreInNameOrderWhateverTheFileOrder) {
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\n[shards.zeta]\nexperts = \"0\"\n[shards.alpha]\nexperts = \"1\"\n",
      "g.toml");
  ASSERT_EQ(g.shards.size(), 2u);
  EXPECT_EQ(g.shards[0].name, "alpha");
  EXPECT_EQ(g.shards[1].name, "zeta");
}

TEST(GraphParser, TomlSyntaxErrorHasItsPosition) {
  const auto ds = parse_errors("[model]\npath = \n");
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_TRUE(has_error(ds, 2, 8, "invalid TOML"));
  EXPECT_EQ(ds[0].where.file, "g.toml");
  EXPECT_TRUE(has_error(parse_errors("[model\npath = \"m\"\n"), 1, 7, "invalid TOML"));
}

TEST(GraphParser, DuplicateNodeIsReportedInTheGraphsTerms) {
  const auto ds = parse_errors(kExplicit + "\n[nodes.gpu-1]\nhost = \"x\"\n");
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_TRUE(has_error(ds, 25, 1, "node \"gpu-1\" is defined twice"));
  EXPECT_TRUE(has_hint(ds, "the first [nodes.gpu-1] is at line 10"));
}

TEST(GraphParser, DuplicateShardAndDuplicateKey) {
  EXPECT_TRUE(
      has_error(parse_errors(kExplicit + "[shards.a]\n"), 24, 1, "shard \"a\" is defined twice"));
  const auto ds =
      parse_errors(edited("data_port = 5551\nrouter", "data_port = 5551\nhost = \"y\"\nrouter"));
  EXPECT_TRUE(has_error(ds, 8, 1, "key \"host\" in [nodes.router] is set twice"));
  EXPECT_TRUE(has_hint(ds, "the first is at line 5"));
}

TEST(GraphParser, UnknownKeysSuggestTheClosestKnownKey) {
  auto ds = parse_errors(edited("experts = \"0-3,6\"", "exprets = \"0-3,6\""));
  EXPECT_TRUE(has_error(ds, 18, 1, "unknown key \"exprets\" in [shards.a]"));
  EXPECT_TRUE(has_hint(ds, "did you mean \"experts\"?"));
  EXPECT_TRUE(has_error(ds, 15, 1, "shard \"a\" has no experts"));  // and the consequence

  ds = parse_errors(kExplicit + "[shard.c]\nnode = \"router\"\n");
  EXPECT_TRUE(has_error(ds, 24, 2, "unknown table [shard]"));
  EXPECT_TRUE(has_hint(ds, "did you mean \"shards\"?"));

  ds = parse_errors(edited("router = true", "router = true\nreplicas = 2"));
  EXPECT_TRUE(has_error(ds, 9, 1, "unknown key \"replicas\" in [nodes.router]"));
  EXPECT_TRUE(has_hint(ds, "known keys here: host, control_port, data_port, router"));

  EXPECT_TRUE(has_error(parse_errors("[model]\npath = \"m\"\nd_type = \"f32\"\n"), 3, 1,
                        "unknown key \"d_type\" in [model]"));
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[timeouts]\nheartbeat = 100\n"), 25, 1,
                        "unknown key \"heartbeat\" in [timeouts]"));
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[api]\nprot = 1\n"), 25, 1,
                        "unknown key \"prot\" in [api]"));
}

TEST(GraphParser, WrongValueTypes) {
  auto ds = parse_errors(edited("control_port = 5550\ndata_port = 5551\nrouter",
                                "control_port = \"5550\"\ndata_port = 5551\nrouter"));
  EXPECT_TRUE(
      has_error(ds, 6, 16, "control_port in [nodes.router] must be an integer, not a string"));
  EXPECT_TRUE(has_hint(ds, "write control_port = 5550, without quotes"));

  ds = parse_errors(edited("router = true", "router = \"true\""));
  EXPECT_TRUE(has_error(ds, 8, 10, "router in [nodes.router] must be a boolean, not a string"));
  EXPECT_TRUE(has_hint(ds, "write router = true or false, without quotes"));
  ds = parse_errors(edited("data_port = 5551\nrouter", "data_port = \"data\"\nrouter"));
  EXPECT_TRUE(has_error(ds, 7, 13, "data_port in [nodes.router] must be an integer"));
  EXPECT_FALSE(has_hint(ds, "without quotes"));  // no advice to write `data_port = data`
  EXPECT_TRUE(has_error(parse_errors("x = 1\n[model]\npath = \"m\"\n"), 1, 1,
                        "unknown top-level key \"x\""));

  ds = parse_errors(edited("experts = \"0-3,6\"", "experts = 3"));
  EXPECT_TRUE(has_error(ds, 18, 11, "experts in [shards.a] must be a string, not an integer"));
  EXPECT_TRUE(has_hint(ds, "in quotes"));

  EXPECT_TRUE(has_error(parse_errors("[model]\npath = [\"m\"]\n"), 2, 8,
                        "path in [model] must be a string, not an array"));
  EXPECT_TRUE(has_error(parse_errors("model = \"m\"\n"), 1, 9, "model must be a table"));
  EXPECT_TRUE(has_error(parse_errors("[model]\npath = \"m\"\n[[shards]]\nexperts = \"0\"\n"), 3, 1,
                        "shards must be tables [shards.NAME], not an array"));
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[timeouts]\nrequest_ms = 1.5\n"), 25, 14,
                        "request_ms in [timeouts] must be an integer, not a float"));
}

TEST(GraphParser, ModelTableAndItsKeys) {
  EXPECT_TRUE(has_error(parse_errors("[api]\nport = 8000\n"), 1, 1, "no [model] table"));
  EXPECT_TRUE(has_error(parse_errors("[model]\ndtype = \"f32\"\n"), 1, 1, "[model] has no path"));
  EXPECT_TRUE(has_error(parse_errors("[model]\npath = \"\"\n"), 2, 8, "path in [model] is empty"));
  const auto ds = parse_errors("[model]\npath = \"m\"\ndtype = \"bf61\"\n");
  EXPECT_TRUE(has_error(ds, 3, 9, "dtype \"bf61\" in [model] is not one of f32, bf16, auto"));
  EXPECT_TRUE(has_hint(ds, "did you mean \"bf16\"?"));
}

TEST(GraphParser, ShardOnAnUnknownNodeSuggestsOne) {
  auto ds = parse_errors(edited("node = \"gpu-1\"", "node = \"gpu-2\""));
  ASSERT_EQ(ds.size(), 1u) << test_support::describe(ds);
  EXPECT_TRUE(has_error(ds, 16, 8, "shard \"a\" is on node \"gpu-2\", which is not declared"));
  EXPECT_TRUE(has_hint(ds, "did you mean \"gpu-1\"?"));

  ds = parse_errors("[model]\npath = \"m\"\n[shards.a]\nnode = \"box\"\nexperts = \"all\"\n");
  EXPECT_TRUE(has_error(ds, 4, 8, "is on node \"box\", which is not declared"));
  EXPECT_TRUE(has_hint(ds, "with no [nodes.NAME] tables everything runs in one node"));

  ds = parse_errors(edited("node = \"gpu-1\"\n", ""));
  EXPECT_TRUE(has_error(ds, 15, 1, "shard \"a\" has no node"));
  EXPECT_TRUE(has_hint(ds, "add node = \"<one of: gpu-1, router>\""));
}

TEST(GraphParser, MalformedRangesPointAtTheBadItem) {
  EXPECT_TRUE(has_error(parse_errors(edited("experts = \"0-3,6\"", "experts = \"0-3,3-1\"")), 18,
                        16, "experts in [shards.a]: range 3-1 is backwards"));
  EXPECT_TRUE(has_error(parse_errors(edited("layers = \"0-1\"", "layers = \"a-b\"")), 17, 11,
                        "layers in [shards.a]: \"a-b\" is not an id or a range A-B"));
  EXPECT_TRUE(has_error(parse_errors(edited("experts = \"0-3,6\"", "experts = \"\"")), 18, 12,
                        "experts in [shards.a]: empty range"));
  // Overlaps are fine.
  EXPECT_TRUE(parse_errors(edited("experts = \"0-3,6\"", "experts = \"0-3,2-6\"")).empty());
}

TEST(GraphParser, NodesNeedHostAndPorts) {
  const auto ds = parse_errors(edited("host = \"10.0.0.2\"\ncontrol_port = 5550\n", ""));
  EXPECT_TRUE(has_error(ds, 10, 1, "node \"gpu-1\" has no host, control_port"));
  EXPECT_TRUE(has_hint(ds, "every [nodes.NAME] needs host, control_port and data_port"));
}

TEST(GraphParser, ExactlyOneRouter) {
  EXPECT_TRUE(
      has_error(parse_errors(edited("router = true\n", "")), 4, 1, "no node runs the router"));
  const auto ds = parse_errors(
      edited("data_port = 5551\n\n[shards.a]", "data_port = 5551\nrouter = true\n\n[shards.a]"));
  EXPECT_TRUE(has_error(ds, 10, 1,
                        "node \"gpu-1\" is a second router node (node \"router\" at line 4 is one "
                        "already)"));
}

TEST(GraphParser, PortsOutsideTheirRange) {
  EXPECT_TRUE(
      has_error(parse_errors(edited("data_port = 5551\nrouter", "data_port = 70000\nrouter")), 7,
                13, "data_port 70000 in [nodes.router] is outside 1-65535"));
  EXPECT_TRUE(has_error(parse_errors(edited("data_port = 5551\nrouter", "data_port = 0\nrouter")),
                        7, 13, "outside 1-65535"));
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[api]\nport = -1\n"), 25, 8,
                        "port -1 in [api] is outside 1-65535"));
}

TEST(GraphParser, OneHostPortUsedTwice) {
  // Same ports on different hosts are fine (kExplicit); on one host they clash.
  auto ds = parse_errors(edited("host = \"10.0.0.2\"", "host = \"10.0.0.1\""));
  EXPECT_TRUE(has_error(ds, 12, 16,
                        "10.0.0.1:5550 is used twice: control_port of node \"gpu-1\" and "
                        "control_port of node \"router\" (line 6)"));
  EXPECT_TRUE(has_error(ds, 13, 13, "10.0.0.1:5551 is used twice"));
  // localhost and 127.0.0.1 are one host.
  ds = parse_errors(
      edited("\"10.0.0.1\"", "\"localhost\"", edited("\"10.0.0.2\"", "\"127.0.0.1\"")));
  EXPECT_TRUE(has_error(ds, 12, 16, "127.0.0.1:5550 is used twice"));
  // A node's two ports.
  EXPECT_TRUE(
      has_error(parse_errors(edited("data_port = 5551\nrouter", "data_port = 5550\nrouter")), 7, 13,
                "10.0.0.1:5550 is used twice: data_port of node \"router\""));
  // The router node's API and metrics ports.
  ds = parse_errors(kExplicit + "[api]\nport = 5551\n");
  EXPECT_TRUE(has_error(ds, 25, 8, "10.0.0.1:5551 is used twice: the [api] port and data_port"));
  ds = parse_errors("[model]\npath = \"m\"\n[metrics]\nport = 8000\n");
  EXPECT_TRUE(has_error(ds, 4, 8,
                        "127.0.0.1:8000 is used twice: the [metrics] port and the [api] port "
                        "(the default)"));
}

TEST(GraphParser, DevicesAreCpuOrCudaN) {
  for (const char* good : {"cpu", "cuda:0", "cuda:12"})
    EXPECT_TRUE(parse_errors(edited("\"cuda:1\"", std::string("\"") + good + "\"")).empty())
        << good;
  for (const char* bad : {"gpu", "cuda", "cuda:", "cuda:x", "CUDA:0", "cuda:-1", "cpu:0"}) {
    const auto ds = parse_errors(edited("\"cuda:1\"", std::string("\"") + bad + "\""));
    EXPECT_TRUE(has_error(ds, 19, 10, "is not \"cpu\" or \"cuda:N\"")) << bad;
  }
}

TEST(GraphParser, NamesHostsAndTimeouts) {
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[shards.\"my shard\"]\nexperts = \"0\"\n"), 24, 9,
                        "shard name \"my shard\" may use only letters, digits"));
  EXPECT_TRUE(has_error(parse_errors(edited("\"10.0.0.2\"", "\"10.0.0.2:5550\"")), 11, 8,
                        "has a port in it"));
  EXPECT_TRUE(has_error(parse_errors(edited("\"10.0.0.2\"", "\"tcp://10.0.0.2\"")), 11, 8,
                        "has a URL scheme"));
  EXPECT_TRUE(has_error(parse_errors(edited("\"10.0.0.2\"", "\"\"")), 11, 8,
                        "host in [nodes.gpu-1] is empty"));
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[timeouts]\nheartbeat_ms = 3000\n"), 25, 16,
                        "peer_down_ms (2000) must be greater than heartbeat_ms (3000)"));
  EXPECT_TRUE(has_error(parse_errors(kExplicit + "[timeouts]\nrequest_ms = 0\n"), 25, 14,
                        "request_ms 0 in [timeouts] is outside 1-86400000"));
}

TEST(GraphParser, EveryProblemIsReportedTogether) {
  std::string text = edited("router = true", "router = \"yes\"");
  text = edited("experts = \"0-3,6\"", "exprets = \"0-3,6\"", text);
  text = edited("cuda:1", "gpu", text) + "[api]\nport = 99999\n";
  const auto ds = parse_errors(text);
  EXPECT_TRUE(has_error(ds, 8, 10, "must be a boolean"));
  EXPECT_TRUE(has_error(ds, 18, 1, "unknown key \"exprets\""));
  EXPECT_TRUE(has_error(ds, 19, 10, "device \"gpu\""));
  EXPECT_TRUE(has_error(ds, 25, 8, "outside 1-65535"));
  // A router key that could not be read does not also count as "no router".
  for (const auto& d : ds) EXPECT_EQ(d.message.find("no node runs the router"), std::string::npos);
  // In file order, and what() has them all, one per line.
  for (size_t i = 1; i < ds.size(); ++i) EXPECT_LE(ds[i - 1].where.line, ds[i].where.line);
  try {
    parse_graph(text, "g.toml");
    FAIL() << "parsed";
  } catch (const GraphError& e) {
    const std::string what = e.what();
    EXPECT_EQ(static_cast<size_t>(std::count(what.begin(), what.end(), '\n')),
              e.diagnostics().size() - 1);
    EXPECT_NE(what.find("g.toml:19:10: error: device \"gpu\" in [shards.a] is not \"cpu\" or "
                        "\"cuda:N\" (hint: e.g. device = \"cuda:0\" for the first GPU)"),
              std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace moeflow

namespace moeflow {
namespace {

TEST(GraphScheduler, ReadsLimitsAndRefusesBadValues) {
  const std::string base = "[model]\npath = \"m\"\n";
  const GraphSpec g =
      parse_graph(base + "[scheduler]\nmax_running = 8\nkv_budget_tokens = 4096\n", "g.toml");
  EXPECT_EQ(g.scheduler.max_running, 8);
  EXPECT_EQ(g.scheduler.kv_budget_tokens, 4096);
  EXPECT_EQ(g.scheduler.max_waiting, 256);  // default
  try {
    parse_graph(base + "[scheduler]\nmax_running = 0\nmax_wating = 3\n", "g.toml");
    FAIL() << "expected errors";
  } catch (const GraphError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("g.toml:4:15: error: max_running 0 in [scheduler] must be positive"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("did you mean \"max_waiting\""), std::string::npos) << what;
  }
  EXPECT_NE(graph_hash(g), graph_hash(parse_graph(base, "g.toml")));
}

TEST(GraphParser, RouterDeviceIsCpuOrCudaN) {
  EXPECT_EQ(parse_graph("[model]\npath = \"m\"\n", "g.toml").model.router_device, "cpu");
  EXPECT_EQ(parse_graph("[model]\npath = \"m\"\nrouter_device = \"cuda:2\"\n", "g.toml")
                .model.router_device,
            "cuda:2");
  const auto ds = parse_errors("[model]\npath = \"m\"\nrouter_device = \"gpu0\"\n");
  EXPECT_TRUE(
      has_error(ds, 3, 17, "router_device \"gpu0\" in [model] is not \"cpu\" or \"cuda:N\""));
}

}  // namespace
}  // namespace moeflow
