#pragma once
// The few SIMD operations the CPU kernels need, for AVX-512 when the build targets it and AVX2
// otherwise. Only the kernels include this.
#include <immintrin.h>

#include <cstdint>

namespace moeflow::kernels::simd {

#if defined(__AVX512F__)
using vec = __m512;
inline constexpr int kLanes = 16;
inline vec zero() {
  return _mm512_setzero_ps();
}
inline vec load(const float* p) {
  return _mm512_loadu_ps(p);
}
inline vec load(const uint16_t* p) {  // bf16 -> fp32
  // The maskz forms avoid GCC 12's false -Wuninitialized on _mm512_undefined_* (GCC PR 105593).
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  __m512i w = _mm512_maskz_cvtepu16_epi32(0xFFFF, h);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, w, 16));
}
inline void store(float* p, vec v) {
  _mm512_storeu_ps(p, v);
}
inline vec fma(vec a, vec b, vec c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline vec mul(vec a, vec b) {
  return _mm512_mul_ps(a, b);
}
inline vec add(vec a, vec b) {
  return _mm512_add_ps(a, b);
}
inline vec set1(float v) {
  return _mm512_set1_ps(v);
}
inline float sum(vec v) {
  __m256 lo = _mm512_maskz_extractf32x8_ps(0xFF, v, 0);
  __m256 hi = _mm512_maskz_extractf32x8_ps(0xFF, v, 1);
  __m256 s8 = _mm256_add_ps(lo, hi);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
using vec = __m256;
inline constexpr int kLanes = 8;
inline vec zero() {
  return _mm256_setzero_ps();
}
inline vec load(const float* p) {
  return _mm256_loadu_ps(p);
}
inline vec load(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline void store(float* p, vec v) {
  _mm256_storeu_ps(p, v);
}
inline vec fma(vec a, vec b, vec c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline vec mul(vec a, vec b) {
  return _mm256_mul_ps(a, b);
}
inline vec add(vec a, vec b) {
  return _mm256_add_ps(a, b);
}
inline vec set1(float v) {
  return _mm256_set1_ps(v);
}
inline float sum(vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

inline float to_f32(float v) {
  return v;
}
inline float to_f32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace moeflow::kernels::simd
