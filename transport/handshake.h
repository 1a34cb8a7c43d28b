#pragma once
// The hello / hello_ack exchange: two nodes talk only when they serve the same graph and model.
// The wire version is checked by decode() already (DropReason::bad_version).
#include <optional>
#include <string>

#include "transport/wire_format.h"

namespace moeflow::transport {

// Nullopt when a peer that said `theirs` may talk with us, otherwise why not, naming the peer and
// both values: "peer experts-a: graph hash 0x00000000000000ff differs from ours 0x...".
std::optional<std::string> check_peer(const Hello& ours, const Hello& theirs);

// "0x%016x": how hashes appear in logs and errors.
std::string format_hash(uint64_t hash);

}  // namespace moeflow::transport
