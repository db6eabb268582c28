// svbr/hd_math.hpp: the per-pixel arithmetic of the network contract, written once for CPU and CUDA.
//
// Bit-exact with runtime/deblurrer.py (numpy, float32):
//   uint8 -> float  : v / 255.0f                 (== astype(float32) / float32(255); never v * (1/255))
//   radius -> map   : clip(r / 6.0f, 0, 1)       (== np.clip(r / float32(6), 0, 1))
//   float -> uint8  : rint(clip(x, 0, 1) * 255)  (round half to even, == np.rint)
// Compile users of these functions without -ffast-math and with -ffp-contract=off (CPU) / --fmad=false (CUDA).
#pragma once

#include <cstdint>
#include <math.h>

#if defined(__CUDACC__)
#define SVBR_HD __host__ __device__
#else
#define SVBR_HD
#endif

namespace svbr {

/// Largest trained blur radius (px); the map input is radius / kMaxRadiusPx clipped to [0, 1].
constexpr float kMaxRadiusPx = 6.0f;
/// Network height and width must be multiples of this (two 2x downsamplings).
constexpr int kSizeMultiple = 4;
/// Receptive-field half-width (px): with this halo, tiled output equals the full-frame output.
constexpr int kHaloPx = 84;

namespace math {

SVBR_HD inline float unit_from_u8(std::uint8_t v) { return static_cast<float>(v) / 255.0f; }

SVBR_HD inline float clip_unit(float x) {
  // np.clip(x, 0, 1) == minimum(maximum(x, 0), 1); NaN stays NaN
  x = x < 0.0f ? 0.0f : x;
  return x > 1.0f ? 1.0f : x;
}

SVBR_HD inline float map_from_radius(float radius_px) { return clip_unit(radius_px / kMaxRadiusPx); }

SVBR_HD inline std::uint8_t u8_from_unit(float x) {
  if (x != x) return 0;  // NaN: what numpy's cast yields on x86
  return static_cast<std::uint8_t>(rintf(clip_unit(x) * 255.0f));
}

/// Reflect-101 index (…, 2, 1, 0, 1, 2, …) of position p on an axis of length size (np.mod semantics).
SVBR_HD inline int reflect101(long long p, int size) {
  if (size == 1) return 0;
  const long long period = 2LL * (size - 1);
  long long folded = ((p % period) + period) % period;
  return static_cast<int>(folded < size ? folded : period - folded);
}

}  // namespace math
}  // namespace svbr
