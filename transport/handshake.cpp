#include "transport/handshake.h"

#include <cinttypes>
#include <cstdio>

namespace moeflow::transport {

std::string format_hash(uint64_t hash) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016" PRIx64, hash);
  return text;
}

std::optional<std::string> check_peer(const Hello& ours, const Hello& theirs) {
  const std::string peer = "peer " + theirs.node_name + ": ";
  if (theirs.graph_hash != ours.graph_hash)
    return peer + "graph hash " + format_hash(theirs.graph_hash) + " differs from ours " +
           format_hash(ours.graph_hash) + " (" + ours.node_name + ")";
  if (theirs.model_hash != ours.model_hash)
    return peer + "model hash " + format_hash(theirs.model_hash) + " differs from ours " +
           format_hash(ours.model_hash) + " (" + ours.node_name + ")";
  if (theirs.node_name == ours.node_name)
    return peer + "has the same node name as this node; node names must be unique";
  return std::nullopt;
}

}  // namespace moeflow::transport
