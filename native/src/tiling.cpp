// Port of runtime/tiling.py: plan_tiles, reflect_indices (window gathering/stitching are templates in the header).
#include "svbr/tiling.hpp"

#include <string>

namespace svbr {

int round_up(int value, int multiple) {
  // Python's -(-v // m) * m; C++ division truncates, so use the non-negative form.
  return (value + multiple - 1) / multiple * multiple;
}

namespace {
std::vector<int> tile_starts(int length, int tile) {
  if (tile >= length) return {0};
  std::vector<int> starts;
  for (int s = 0; s < length - tile; s += tile) starts.push_back(s);
  starts.push_back(length - tile);
  return starts;
}
}  // namespace

TilePlan plan_tiles(int height, int width, std::optional<int> tile, int halo, int multiple) {
  if (height < 1 || width < 1)
    throw InvalidInput("image must not be empty, got " + std::to_string(height) + "×" + std::to_string(width));
  if (tile && *tile < 1)
    throw InvalidInput("tile must be a positive number of pixels or None, got " + std::to_string(*tile));
  if (halo < 0) throw InvalidInput("halo must be >= 0 px, got " + std::to_string(halo));
  if (multiple < 1) throw InvalidInput("multiple must be >= 1, got " + std::to_string(multiple));
  TilePlan plan;
  plan.height = height;
  plan.width = width;
  const int canvas_height = round_up(height, multiple), canvas_width = round_up(width, multiple);
  plan.halo = round_up(halo, multiple);
  if (!tile) {
    plan.tile_height = canvas_height;
    plan.tile_width = canvas_width;
  } else {
    const int t = round_up(*tile, multiple);
    plan.tile_height = std::min(t, canvas_height);
    plan.tile_width = std::min(t, canvas_width);
  }
  for (int row : tile_starts(canvas_height, plan.tile_height))
    for (int column : tile_starts(canvas_width, plan.tile_width)) plan.origins.push_back({row, column});
  return plan;
}

std::vector<int> reflect_indices(long long start, long long stop, int size) {
  std::vector<int> out;
  if (stop > start) out.reserve(static_cast<std::size_t>(stop - start));
  for (long long p = start; p < stop; ++p) out.push_back(math::reflect101(p, size));
  return out;
}

}  // namespace svbr
