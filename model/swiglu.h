#pragma once
// The SwiGLU MLP every expert, shared expert and dense layer of the supported families uses:
// out = down(silu(gate(x)) * up(x)).
#include <cstdint>
#include <vector>

#include "model/weights.h"

namespace moeflow {

// x: [n, hidden]; out: [n, hidden] (overwritten). `scratch` is reused between calls.
void swiglu(const MlpWeights& w, const float* x, int64_t n, float* out,
            std::vector<float>& scratch);

}  // namespace moeflow
