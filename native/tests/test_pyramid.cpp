// svbr/pyramid.hpp and Deblurrer's pyramid path, around the fake backend: the level plan and its weights,
// exact tiling at every level, and today's single pass kept bit for bit where every radius is <= 6 px.
// Bit-exactness with the Python runtime (real model, real images) is tests/test_native.py's job.
#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "svbr/deblurrer.hpp"
#include "svbr/errors.hpp"
#include "svbr/pyramid.hpp"
#include "test_helpers.hpp"

namespace pyramid = svbr::pyramid;
using svbr::Deblurrer;
using svbr::test::BoxBackend;

TEST(Pyramid, LevelCountAndSizes) {
  EXPECT_EQ(pyramid::level_count(6.0), 1);
  EXPECT_EQ(pyramid::level_count(12.0), 2);
  EXPECT_EQ(pyramid::level_count(48.0), 4);
  EXPECT_EQ(pyramid::level_count(192.0), 6);
  int h = 0, w = 0;
  pyramid::level_size(101, 37, 1, h, w);  // 50.5 -> 50, 18.5 -> 18: half to even
  EXPECT_EQ(h, 50);
  EXPECT_EQ(w, 18);
  pyramid::level_size(3, 5, 3, h, w);  // never below one pixel
  EXPECT_EQ(h, 1);
  EXPECT_EQ(w, 1);
  EXPECT_THROW(pyramid::validate_max_radius(5.0), svbr::InvalidInput);
  EXPECT_THROW(pyramid::validate_max_radius(200.0), svbr::InvalidInput);
}

TEST(Pyramid, WeightsSumToOneAndFollowTheRadius) {
  float weights[pyramid::kMaxLevels];
  for (float r = 0.0f; r <= 60.0f; r += 0.0625f) {
    pyramid::level_weights(r, 48.0, weights);
    float sum = 0.0f;
    for (int k = 0; k < 4; ++k) {
      EXPECT_GE(weights[k], 0.0f) << r;
      sum += weights[k];
    }
    EXPECT_FLOAT_EQ(sum, 1.0f) << r;
  }
  pyramid::level_weights(6.0f, 48.0, weights);  // <= 6 px: all on the full-resolution level
  EXPECT_EQ(weights[0], 1.0f);
  pyramid::level_weights(12.0f, 48.0, weights);  // exactly 6 · 2 px: all on level 1/2
  EXPECT_EQ(weights[1], 1.0f);
  pyramid::level_weights(100.0f, 48.0, weights);  // beyond max_radius_px: clipped onto the coarsest level
  EXPECT_EQ(weights[3], 1.0f);
}

TEST(Pyramid, LevelPlanListsTheLevelsInUse) {
  std::vector<float> map(4 * 5, 3.0f);
  EXPECT_EQ(pyramid::level_plan(map.data(), 5, 4, 5, 48.0), std::vector<int>{0});
  map[7] = 24.0f;  // one pixel at 6 · 4 px: level 1/4 only
  EXPECT_EQ(pyramid::level_plan(map.data(), 5, 4, 5, 48.0), (std::vector<int>{0, 2}));
  map[8] = 9.0f;  // between 6 and 12 px: levels 1/1 and 1/2 blended
  EXPECT_EQ(pyramid::level_plan(map.data(), 5, 4, 5, 48.0), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(pyramid::level_plan(map.data(), 5, 4, 5, 6.0), std::vector<int>{0});  // max_radius_px=6: one pass
}

namespace {
struct Scene {
  int height, width;
  std::vector<std::uint8_t> image;
  std::vector<float> radius;
};

// random pixels; radii rising from 0 px on the left to max_px on the right
Scene make_scene(int height, int width, float max_px) {
  std::mt19937 rng(7);
  Scene s{height, width, std::vector<std::uint8_t>(static_cast<std::size_t>(height) * width * 3),
          std::vector<float>(static_cast<std::size_t>(height) * width)};
  for (auto& v : s.image) v = static_cast<std::uint8_t>(rng() % 256);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) s.radius[y * width + x] = max_px * x / std::max(1, width - 1);
  return s;
}

std::vector<std::uint8_t> run(const Scene& s, std::optional<int> tile, double max_radius_px, double strength = 1.0) {
  Deblurrer d(std::make_unique<BoxBackend>(3), {tile, 4, 2, strength, max_radius_px});
  d.set_warning_handler({});
  return d.deblur(s.image.data(), s.height, s.width, s.radius.data());
}
}  // namespace

TEST(Pyramid, TiledEqualsFullFrameAtEveryLevel) {
  const Scene s = make_scene(53, 71, 40.0f);  // levels 1, 1/2, 1/4, 1/8
  const auto full = run(s, std::nullopt, 48.0);
  EXPECT_EQ(run(s, 8, 48.0), full);
  EXPECT_EQ(run(s, 12, 48.0), full);
  EXPECT_NE(full, run(s, std::nullopt, 6.0));  // the coarser levels change the large-radius side
}

TEST(Pyramid, RadiiUpToSixPixelsTakeTodaysPathBitForBit) {
  const Scene s = make_scene(29, 33, 6.0f);
  EXPECT_EQ(run(s, 8, 48.0), run(s, 8, 6.0));
  EXPECT_EQ(run(s, 8, 192.0), run(s, std::nullopt, 6.0));
}

TEST(Pyramid, StrengthZeroReturnsTheInputAtEveryLevel) {
  const Scene s = make_scene(21, 40, 30.0f);
  EXPECT_EQ(run(s, 8, 48.0, 0.0), s.image);
}

TEST(Pyramid, ProgressCountsTheTilesOfEveryLevel) {
  const Scene s = make_scene(37, 41, 20.0f);  // levels 1, 1/2, 1/4
  Deblurrer d(std::make_unique<BoxBackend>(3), {8, 4, 1});
  d.set_warning_handler({});
  const std::size_t expected = d.count_tiles(37, 41) + d.count_tiles(18, 20) + d.count_tiles(9, 10);
  EXPECT_EQ(d.count_tiles(svbr::MapView{s.radius.data(), 37, 41}), expected);
  std::vector<std::uint8_t> out(s.image.size());
  std::size_t last_done = 0, last_total = 0;
  d.deblur(svbr::ImageView<const std::uint8_t>{s.image.data(), 37, 41}, svbr::MapView{s.radius.data(), 37, 41},
           svbr::ImageView<std::uint8_t>{out.data(), 37, 41}, svbr::ChannelOrder::BGR,
           [&](std::size_t done, std::size_t total) {
             EXPECT_GE(done, last_done);
             last_done = done;
             last_total = total;
           });
  EXPECT_EQ(last_done, expected);
  EXPECT_EQ(last_total, expected);
}
