// Port of runtime/pyramid.py (levels, weights, plan) and of OpenCV's INTER_AREA downscaling. Compiled with
// -ffp-contract=off: every float operation below is the one numpy / OpenCV performs, in the same order.
#include "svbr/pyramid.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>

#include "svbr/errors.hpp"
#include "svbr/hd_math.hpp"

namespace svbr::pyramid {

double validate_max_radius(double max_radius_px) {
  if (!(std::isfinite(max_radius_px) && max_radius_px >= kMaxRadiusPx && max_radius_px <= kLimitMaxRadiusPx)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "max_radius_px must be a finite number of px in [6, 192], got %g", max_radius_px);
    throw InvalidInput(buf);
  }
  return max_radius_px;
}

int level_count(double max_radius_px) {
  return 1 + std::max(0, static_cast<int>(std::ceil(std::log2(max_radius_px / kMaxRadiusPx) - 1e-9)));
}

void level_size(int height, int width, int level, int& level_height, int& level_width) {
  const double scale = std::ldexp(1.0, -level);
  // Python's round(): half to even, which nearbyint does in the default rounding mode
  level_height = std::max(1, static_cast<int>(std::nearbyint(height * scale)));
  level_width = std::max(1, static_cast<int>(std::nearbyint(width * scale)));
}

float level_coordinate(float radius_px, double max_radius_px) {
  const float high = static_cast<float>(max_radius_px);
  float r = radius_px < kMaxRadiusPx ? kMaxRadiusPx : radius_px;  // np.clip(r, 6, max)
  r = r > high ? high : r;
  const float ratio = r / kMaxRadiusPx;
  return static_cast<float>(std::log2(static_cast<double>(ratio)));
}

void level_weights(float radius_px, double max_radius_px, float* weights) {
  const int levels = level_count(max_radius_px);
  for (int k = 0; k < levels; ++k) weights[k] = 0.0f;
  const float u = level_coordinate(radius_px, max_radius_px);
  if (std::isnan(u)) return;  // NaN radius: no level (as numpy); floor(NaN) has no int
  const int lower = std::min(static_cast<int>(std::floor(u)), levels - 1);
  // (u - lower) / 0.125 is exact in float and double alike (numpy computes it in float64)
  float coarse = (u - static_cast<float>(lower)) / kTransitionOctaves;
  coarse = coarse < 0.0f ? 0.0f : (coarse > 1.0f ? 1.0f : coarse);
  if (lower >= levels - 1) coarse = 0.0f;
  weights[lower] = 1.0f - coarse;
  if (lower + 1 < levels) weights[lower + 1] = coarse;
}

std::vector<int> level_plan(const float* map, std::ptrdiff_t row_stride, int height, int width,
                            double max_radius_px) {
  float largest = 0.0f;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const float r = map[y * row_stride + x];
      if (std::isnan(r)) return {0};  // numpy's max is NaN then: today's single pass, as runtime.pyramid
      largest = std::max(largest, r);
    }
  if (max_radius_px <= kMaxRadiusPx || !std::isfinite(largest) || largest <= kMaxRadiusPx) return {0};
  const int levels = level_count(max_radius_px);
  bool used[kMaxLevels + 1] = {};
  float weights[kMaxLevels + 1];
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      level_weights(map[y * row_stride + x], max_radius_px, weights);
      for (int k = 0; k < levels; ++k) used[k] = used[k] || weights[k] > 0.0f;
    }
  std::vector<int> plan;
  for (int k = 0; k < levels; ++k)
    if (used[k]) plan.push_back(k);
  return plan;
}

Taps bilinear_taps(int size_out, int size_in) {
  Taps taps;
  taps.lower.resize(size_out);
  taps.upper.resize(size_out);
  taps.weight.resize(size_out);
  const double ratio = static_cast<double>(size_in) / size_out;
  for (int p = 0; p < size_out; ++p) {
    double source = (p + 0.5) * ratio - 0.5;
    source = std::min(std::max(source, 0.0), static_cast<double>(size_in - 1));
    const double lower = std::floor(source);
    taps.lower[p] = static_cast<int>(lower);
    taps.upper[p] = std::min(taps.lower[p] + 1, size_in - 1);
    taps.weight[p] = static_cast<float>(source - lower);
  }
  return taps;
}

// --- INTER_AREA ------------------------------------------------------------------------------------------------

namespace {

inline std::uint8_t saturate_u8(float v) {  // cv::saturate_cast<uchar>(float): cvRound (half to even), clamped
  const int i = static_cast<int>(std::lrint(v));
  return static_cast<std::uint8_t>(i < 0 ? 0 : (i > 255 ? 255 : i));
}
inline std::uint8_t saturate_u8(int v) { return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }
inline void store(float v, std::uint8_t& out) { out = saturate_u8(v); }
inline void store(float v, float& out) { out = v; }

/// OpenCV's SIMD width for float lanes in the 2×2 float fast path (v_float32 of the 128-bit baseline).
constexpr int kFloatLanes = 4;

/// resizeAreaFast_ (integer factors sx × sy; dst = src / factor exactly).
template <class T>
void area_fast(const T* src, std::ptrdiff_t src_stride, int channels, T* dst, int dst_height, int dst_width, int sx,
               int sy) {
  const int cn = channels, area = sx * sy;
  const float scale = 1.0f / static_cast<float>(area);
  std::vector<std::ptrdiff_t> ofs;
  for (int a = 0; a < sy; ++a)
    for (int b = 0; b < sx; ++b) ofs.push_back(a * src_stride + static_cast<std::ptrdiff_t>(b) * cn);
  const int w = dst_width * cn;
  constexpr bool is_u8 = std::is_same<T, std::uint8_t>::value;
  const bool fast_mode = sx == 2 && sy == 2 && (is_u8 ? (cn == 1 || cn == 3 || cn == 4) : (cn == 1 || cn == 4));
  for (int dy = 0; dy < dst_height; ++dy) {
    const T* row = src + static_cast<std::ptrdiff_t>(dy) * sy * src_stride;
    T* D = dst + static_cast<std::ptrdiff_t>(dy) * w;
    for (int dx = 0; dx < w; ++dx) {
      const int j = dx / cn, k = dx % cn;
      const T* S = row + static_cast<std::ptrdiff_t>(sx) * j * cn + k;
      if constexpr (is_u8) {
        if (fast_mode) {  // ResizeAreaFastVec: (a + b + c + d + 2) >> 2, SIMD and scalar alike
          D[dx] = static_cast<std::uint8_t>((S[ofs[0]] + S[ofs[1]] + S[ofs[2]] + S[ofs[3]] + 2) >> 2);
          continue;
        }
        int sum = 0;
        for (int q = 0; q < area; ++q) sum += S[ofs[q]];
        D[dx] = saturate_u8(static_cast<float>(sum) * scale);
      } else {
        // ResizeAreaFastVec_SIMD_32f: ((a + b) + (c + d)) * 0.25 in steps of lanes while dx <= w - lanes; for 4
        // channels (4 lanes of one pixel each step) that is every dx, for 1 channel all but a scalar tail
        const int simd_end = (w / kFloatLanes) * kFloatLanes;
        if (fast_mode && dx < simd_end) {
          D[dx] = ((S[ofs[0]] + S[ofs[1]]) + (S[ofs[2]] + S[ofs[3]])) * 0.25f;
          continue;
        }
        float sum = 0.0f;
        int q = 0;
        for (; q <= area - 4; q += 4) sum += S[ofs[q]] + S[ofs[q + 1]] + S[ofs[q + 2]] + S[ofs[q + 3]];
        for (; q < area; ++q) sum += S[ofs[q]];
        D[dx] = sum * scale;
      }
    }
  }
}

struct DecimateAlpha {
  int si, di;
  float alpha;
};

std::vector<DecimateAlpha> area_tab(int ssize, int dsize, int cn, double scale) {
  std::vector<DecimateAlpha> tab;
  for (int dx = 0; dx < dsize; ++dx) {
    const double fsx1 = dx * scale;
    const double fsx2 = fsx1 + scale;
    const double cell_width = std::min(scale, ssize - fsx1);
    int sx1 = static_cast<int>(std::ceil(fsx1)), sx2 = static_cast<int>(std::floor(fsx2));
    sx2 = std::min(sx2, ssize - 1);
    sx1 = std::min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab.push_back({(sx1 - 1) * cn, dx * cn, static_cast<float>((sx1 - fsx1) / cell_width)});
    for (int sx = sx1; sx < sx2; ++sx) tab.push_back({sx * cn, dx * cn, static_cast<float>(1.0 / cell_width)});
    if (fsx2 - sx2 > 1e-3)
      tab.push_back({sx2 * cn, dx * cn, static_cast<float>(std::min(std::min(fsx2 - sx2, 1.0), cell_width) / cell_width)});
  }
  return tab;
}

/// resizeArea_<T, float> (any factors >= 1).
template <class T>
void area_general(const T* src, std::ptrdiff_t src_stride, int height, int width, int cn, T* dst, int dst_height,
                  int dst_width, double scale_x, double scale_y) {
  const std::vector<DecimateAlpha> xtab = area_tab(width, dst_width, cn, scale_x);
  const std::vector<DecimateAlpha> ytab = area_tab(height, dst_height, 1, scale_y);
  const int w = dst_width * cn;
  std::vector<float> buf(w), sum(w, 0.0f);
  int prev_dy = ytab.empty() ? 0 : ytab[0].di;
  for (const DecimateAlpha& y : ytab) {
    const float beta = y.alpha;
    const T* S = src + static_cast<std::ptrdiff_t>(y.si) * src_stride;
    std::fill(buf.begin(), buf.end(), 0.0f);
    for (const DecimateAlpha& x : xtab)
      for (int c = 0; c < cn; ++c) buf[x.di + c] = buf[x.di + c] + static_cast<float>(S[x.si + c]) * x.alpha;
    if (y.di != prev_dy) {
      T* D = dst + static_cast<std::ptrdiff_t>(prev_dy) * w;
      for (int dx = 0; dx < w; ++dx) {
        store(sum[dx], D[dx]);
        sum[dx] = beta * buf[dx];
      }
      prev_dy = y.di;
    } else {
      for (int dx = 0; dx < w; ++dx) sum[dx] += beta * buf[dx];
    }
  }
  T* D = dst + static_cast<std::ptrdiff_t>(prev_dy) * w;
  for (int dx = 0; dx < w; ++dx) store(sum[dx], D[dx]);
}

}  // namespace

template <class T>
void resize_area(const T* src, std::ptrdiff_t src_stride, int height, int width, int channels, T* dst,
                 int dst_height, int dst_width) {
  if (channels < 1 || channels > 4) throw InvalidInput("resize_area: 1 to 4 channels, got " + std::to_string(channels));
  if (dst_height < 1 || dst_width < 1 || dst_height > height || dst_width > width)
    throw InvalidInput("resize_area: only downscaling to a non-empty size");
  if (dst_height == height && dst_width == width) {  // cv::resize copies
    for (int y = 0; y < height; ++y)
      std::copy(src + y * src_stride, src + y * src_stride + static_cast<std::ptrdiff_t>(width) * channels,
                dst + static_cast<std::ptrdiff_t>(y) * width * channels);
    return;
  }
  const double inv_scale_x = static_cast<double>(dst_width) / width, inv_scale_y = static_cast<double>(dst_height) / height;
  const double scale_x = 1.0 / inv_scale_x, scale_y = 1.0 / inv_scale_y;
  const int iscale_x = static_cast<int>(std::lrint(scale_x)), iscale_y = static_cast<int>(std::lrint(scale_y));
  const bool is_area_fast = std::abs(scale_x - iscale_x) < DBL_EPSILON && std::abs(scale_y - iscale_y) < DBL_EPSILON;
  if (is_area_fast)
    area_fast(src, src_stride, channels, dst, dst_height, dst_width, iscale_x, iscale_y);
  else
    area_general(src, src_stride, height, width, channels, dst, dst_height, dst_width, scale_x, scale_y);
}

template void resize_area<std::uint8_t>(const std::uint8_t*, std::ptrdiff_t, int, int, int, std::uint8_t*, int, int);
template void resize_area<float>(const float*, std::ptrdiff_t, int, int, int, float*, int, int);

}  // namespace svbr::pyramid
