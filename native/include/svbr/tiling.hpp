// svbr/tiling.hpp: exact tiling, the same geometry as runtime/tiling.py.
//
// The image is extended by reflect-101 into a canvas (halo on every side, plus up to multiple-1 px at the
// bottom/right); every window is a crop of that canvas at offsets that are multiples of `multiple`, so a
// window's centre equals the full-frame result whenever halo >= the receptive-field half-width. Windows are
// gathered through index arrays; no padded copy of the image is ever made.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "svbr/errors.hpp"
#include "svbr/hd_math.hpp"

namespace svbr {

/// Top-left (row, column) of a tile's valid centre in image coordinates.
struct Origin {
  int row = 0;
  int column = 0;
  bool operator==(const Origin& o) const { return row == o.row && column == o.column; }
};

/// Where every tile of one image lies (runtime.tiling.TilePlan).
struct TilePlan {
  int height = 0, width = 0;            ///< image size (px)
  int tile_height = 0, tile_width = 0;  ///< valid centre of every tile (multiples of `multiple`)
  int halo = 0;                         ///< context on each side of a centre
  std::vector<Origin> origins;          ///< row-major

  int window_height() const { return tile_height + 2 * halo; }
  int window_width() const { return tile_width + 2 * halo; }
  std::size_t size() const { return origins.size(); }
};

/// Smallest multiple of `multiple` that is >= value (value >= 0, multiple >= 1).
int round_up(int value, int multiple);

/// Plan the tiles of an H×W image. `tile`: centre edge in px (rounded up to `multiple`), std::nullopt = one
/// full-frame tile. Throws InvalidInput for an empty image, tile < 1, halo < 0 or multiple < 1.
TilePlan plan_tiles(int height, int width, std::optional<int> tile, int halo, int multiple = kSizeMultiple);

/// Indices into an axis of length `size` for positions start..stop-1, reflect-101 at both ends.
std::vector<int> reflect_indices(long long start, long long stop, int size);

/// Gather the window (centre + halo) around `origin` from an H×W×C image with `row_stride` elements per row
/// into `dst` (window_height × window_width × C, contiguous).
template <class T>
void extract_window(const T* src, std::ptrdiff_t row_stride, int channels, const TilePlan& plan, Origin origin,
                    T* dst) {
  const std::vector<int> rows =
      reflect_indices(origin.row - plan.halo, origin.row - plan.halo + plan.window_height(), plan.height);
  const std::vector<int> cols =
      reflect_indices(origin.column - plan.halo, origin.column - plan.halo + plan.window_width(), plan.width);
  for (int r : rows) {
    const T* line = src + static_cast<std::ptrdiff_t>(r) * row_stride;
    for (int c : cols) {
      const T* px = line + static_cast<std::ptrdiff_t>(c) * channels;
      for (int k = 0; k < channels; ++k) *dst++ = px[k];
    }
  }
}

/// Write a window result's valid centre (window_height × window_width × C, contiguous) into the H×W×C
/// `output`, cropped to the image.
template <class T>
void stitch_window(T* output, std::ptrdiff_t row_stride, int channels, const T* result, const TilePlan& plan,
                   Origin origin) {
  const int rows = std::min(plan.tile_height, plan.height - origin.row);
  const int cols = std::min(plan.tile_width, plan.width - origin.column);
  const std::ptrdiff_t window_stride = static_cast<std::ptrdiff_t>(plan.window_width()) * channels;
  for (int y = 0; y < rows; ++y) {
    const T* in = result + (plan.halo + y) * window_stride + static_cast<std::ptrdiff_t>(plan.halo) * channels;
    T* out = output + (origin.row + y) * row_stride + static_cast<std::ptrdiff_t>(origin.column) * channels;
    std::copy(in, in + static_cast<std::ptrdiff_t>(cols) * channels, out);
  }
}

}  // namespace svbr
