// svbr/pyramid.hpp: blur-adaptive multi-scale deblurring (runtime/pyramid.py), without OpenCV.
//
// SVBR-Net is trained for radii up to 6 px; level k of an image pyramid (scale 2^-k) brings radii up to 6 · 2^k px
// into that range. Every pixel gets soft weights over the levels from its radius r:
//   u = log2(clip(r, 6, max_radius) / 6), k = floor(u), w[k+1] = min(1, (u - k) / 0.125), w[k] = 1 - w[k+1].
// Each needed level k > 0 is deblurred on the image downscaled with OpenCV's INTER_AREA (emulated exactly by
// resize_area below), its correction (output - input) upsampled bilinearly (sample_bilinear in Python) and blended:
//   out = w[0] · net0 + Σ_k w[k] · (input + correction_k);   out = net0 wherever w[0] == 1 (radii <= 6 px).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace svbr::pyramid {

/// Deblurrer's default max_radius_px: levels 1, 1/2, 1/4, 1/8 (radii up to 6 · 8 px).
constexpr double kDefaultMaxRadiusPx = 48.0;
/// The largest max_radius_px accepted: six levels, down to 1/32 scale.
constexpr double kLimitMaxRadiusPx = 6.0 * 32;
/// Octaves of radius over which a pixel moves from level k to k + 1 (runtime.pyramid.TRANSITION_OCTAVES).
constexpr float kTransitionOctaves = 0.125f;
/// The most levels any max_radius_px needs.
constexpr int kMaxLevels = 6;

/// max_radius_px, or InvalidInput naming it unless a finite number in [6, 192].
double validate_max_radius(double max_radius_px);
/// Levels needed so that max_radius_px reads at most 6 px on the coarsest: 1 for 6 px, 4 for 48 px.
int level_count(double max_radius_px);
/// Rows and columns of level `level` of an H×W image: the size × 2^-level, rounded half to even, at least 1.
void level_size(int height, int width, int level, int& level_height, int& level_width);
/// float32 log2(clip(r, 6, max_radius_px) / 6), computed as float(log2(double)) like runtime/pyramid.py
/// (a float32 log2 would be CPU-dependent: numpy's AVX-512 routine is 1-2 ulp off for ~7 % of ratios).
float level_coordinate(float radius_px, double max_radius_px);
/// The weights of every level (level_count entries written to `weights`), summing to 1.
void level_weights(float radius_px, double max_radius_px, float* weights);
/// The levels any pixel of an H×W map (row_stride elements per row) has a positive weight on, ascending;
/// {0} = today's single full-resolution pass.
std::vector<int> level_plan(const float* map, std::ptrdiff_t row_stride, int height, int width, double max_radius_px);

/// cv::resize(src, (dst_width, dst_height), interpolation=INTER_AREA) for a downscale (dst <= src), reproduced
/// operation for operation (OpenCV 4.x/5.x resize.cpp: resizeAreaFast_ for integer factors, with the 2×2 fast
/// mode; resizeArea_ with computeResizeAreaTab otherwise). T = std::uint8_t or float; 1 to 4 channels;
/// contiguous rows in `dst`.
template <class T>
void resize_area(const T* src, std::ptrdiff_t src_stride, int height, int width, int channels, T* dst,
                 int dst_height, int dst_width);

/// Source taps of output positions 0..size_out-1 when an axis of size_in samples is resized to size_out
/// (pixel centres aligned, clamped: OpenCV's INTER_LINEAR geometry; runtime.pyramid.bilinear_taps).
struct Taps {
  std::vector<int> lower, upper;
  std::vector<float> weight;  ///< of the upper tap
};
Taps bilinear_taps(int size_out, int size_in);

}  // namespace svbr::pyramid
