#pragma once
// A fingerprint of a checkpoint that peers compare in their handshake: config.json's bytes and
// every tensor's name, dtype and shape. Cheap (no tensor data is read) and equal on every node
// that holds the same checkpoint.
#include <cstdint>

#include "model/checkpoint.h"

namespace moeflow {

uint64_t model_hash(const Checkpoint& checkpoint);

}  // namespace moeflow
