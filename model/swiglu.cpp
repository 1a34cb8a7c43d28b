#include "model/swiglu.h"

#include "kernels/cpu/ops.h"

namespace moeflow {

void swiglu(const MlpWeights& w, const float* x, int64_t n, float* out,
            std::vector<float>& scratch) {
  const int64_t inter = w.gate.rows;
  scratch.resize(2 * n * inter);
  float* gate = scratch.data();
  float* up = gate + n * inter;
  kernels::matmul(x, n, w.gate, gate);
  kernels::matmul(x, n, w.up, up);
  kernels::silu_mul(gate, up, n * inter);
  kernels::matmul(gate, n, w.down, out);
}

}  // namespace moeflow
