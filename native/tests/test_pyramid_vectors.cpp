// svbr/pyramid.hpp and Deblurrer's pyramid path equal runtime/pyramid.py and the Python Deblurrer on the shared
// vectors (native/tests/vectors/pyramid.json, written by make_vectors.py from runtime/ and OpenCV), bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "svbr/deblurrer.hpp"
#include "svbr/pyramid.hpp"
#include "test_helpers.hpp"

namespace pyramid = svbr::pyramid;
using svbr::test::load_vectors;

namespace {
bool bits_equal(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::optional<int> tile_of(const nlohmann::json& j) {
  return j.is_null() ? std::nullopt : std::optional<int>(j.get<int>());
}

const nlohmann::json& vectors() {
  static const nlohmann::json v = load_vectors("pyramid.json");
  return v;
}
}  // namespace

TEST(PyramidVectors, LevelCountAndSizeEqualPython) {
  for (const auto& c : vectors()["level_count"])
    EXPECT_EQ(pyramid::level_count(c[0].get<double>()), c[1].get<int>()) << "max_radius_px " << c[0];
  ASSERT_GE(vectors()["level_size"].size(), 300u);
  for (const auto& c : vectors()["level_size"]) {
    int h = -1, w = -1;
    pyramid::level_size(c[0], c[1], c[2], h, w);
    EXPECT_EQ(h, c[3].get<int>()) << c.dump();
    EXPECT_EQ(w, c[4].get<int>()) << c.dump();
  }
}

TEST(PyramidVectors, LevelCoordinateAndWeightsEqualPythonBitForBit) {
  const auto radii = vectors()["radii"].get<std::vector<float>>();
  ASSERT_GE(radii.size(), 100u);
  for (const auto& c : vectors()["weights"]) {
    const double limit = c["max_radius_px"];
    const int levels = pyramid::level_count(limit);
    const auto coordinate = c["coordinate"].get<std::vector<float>>();
    const auto weights = c["weights"].get<std::vector<float>>();
    ASSERT_EQ(weights.size(), radii.size() * levels);
    for (std::size_t i = 0; i < radii.size(); ++i) {
      SCOPED_TRACE("radius " + std::to_string(radii[i]) + " max_radius_px " + std::to_string(limit));
      const float u = pyramid::level_coordinate(radii[i], limit);
      EXPECT_TRUE(bits_equal(u, coordinate[i])) << u << " expected " << coordinate[i];
      float w[pyramid::kMaxLevels + 1];
      std::fill(std::begin(w), std::end(w), -1.0f);
      pyramid::level_weights(radii[i], limit, w);
      for (int k = 0; k < levels; ++k)
        EXPECT_TRUE(bits_equal(w[k], weights[i * levels + k])) << "level " << k << ": " << w[k] << " expected "
                                                               << weights[i * levels + k];
      EXPECT_EQ(w[levels], -1.0f) << "wrote past level_count";
    }
  }
}

// numpy's float32 log2 (SIMD on AVX-512, libm's log2f elsewhere) is up to 2 ulp off on some ratios; C++ rounds
// float(log2(double)) correctly. On these radii make_vectors.py checks numpy within 2 ulp of the correctly rounded
// value (stored here), so C++ and Python differ by at most 2 ulp of the coordinate (16 ulp of a hand-over weight).
TEST(PyramidVectors, LevelPlanEqualsPython) {
  for (const auto& c : vectors()["level_plan"]) {
    const int height = c["height"], width = c["width"];
    const auto map = c["map"].get<std::vector<float>>();
    std::vector<float> strided(static_cast<std::size_t>(height) * (width + 3), 1e30f);  // padding never read
    for (int y = 0; y < height; ++y) std::copy_n(map.begin() + y * width, width, strided.begin() + y * (width + 3));
    for (const auto& [limit, levels] : c["levels"].get<std::vector<std::pair<double, std::vector<int>>>>()) {
      SCOPED_TRACE(std::to_string(height) + "×" + std::to_string(width) + " max_radius_px " + std::to_string(limit));
      EXPECT_EQ(pyramid::level_plan(map.data(), width, height, width, limit), levels);
      EXPECT_EQ(pyramid::level_plan(strided.data(), width + 3, height, width, limit), levels);
    }
  }
}

// JSON has no NaN, so runtime.pyramid's answers are written out: a NaN radius has no level (all weights 0) and a
// map holding one plans today's single pass, (0,) (the Deblurrer refuses such maps before either is asked).
TEST(PyramidVectors, NaNRadiiAsInPython) {
  const float nan = std::nanf("");
  float w[pyramid::kMaxLevels + 1];
  pyramid::level_weights(nan, 48.0, w);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(w[k], 0.0f) << "level " << k;
  const std::vector<float> map = {nan, 30.0f};
  EXPECT_EQ(pyramid::level_plan(map.data(), 2, 1, 2, 48.0), std::vector<int>{0});
}

namespace {
template <class T>
void expect_resize_equals_opencv(const nlohmann::json& c, const std::vector<T>& source) {
  const int height = c["height"], width = c["width"], channels = c["channels"];
  const int dst_height = c["dst_height"], dst_width = c["dst_width"];
  const auto expected = c["expected"].get<std::vector<T>>();
  std::vector<T> dst(static_cast<std::size_t>(dst_height) * dst_width * channels);
  pyramid::resize_area(source.data(), static_cast<std::ptrdiff_t>(width) * channels, height, width, channels,
                       dst.data(), dst_height, dst_width);
  ASSERT_EQ(dst.size(), expected.size());
  for (std::size_t i = 0; i < dst.size(); ++i)
    ASSERT_TRUE(bits_equal(static_cast<float>(dst[i]), static_cast<float>(expected[i])))
        << "element " << i << ": " << +dst[i] << " expected " << +expected[i];
  // the same rows with a larger source stride
  const std::ptrdiff_t row = static_cast<std::ptrdiff_t>(width) * channels, stride = row + 5;
  std::vector<T> padded(static_cast<std::size_t>(height) * stride, T(0));
  for (int y = 0; y < height; ++y) std::copy_n(source.begin() + y * row, row, padded.begin() + y * stride);
  std::vector<T> strided(dst.size());
  pyramid::resize_area(padded.data(), stride, height, width, channels, strided.data(), dst_height, dst_width);
  EXPECT_EQ(strided, dst);
}
}  // namespace

TEST(PyramidVectors, ResizeAreaEqualsOpenCVInterArea) {
  int u8_cases = 0, float_cases = 0;
  for (const auto& c : vectors()["resize_area"]) {
    SCOPED_TRACE(c["dtype"].get<std::string>() + " " + c["channels"].dump() + " channels " + c["height"].dump() +
                 "×" + c["width"].dump() + " -> " + c["dst_height"].dump() + "×" + c["dst_width"].dump());
    const auto source = c["source"].get<std::vector<std::uint8_t>>();
    if (c["dtype"] == "uint8") {
      expect_resize_equals_opencv(c, source);
      ++u8_cases;
    } else {  // float32 source: the uint8 values / divisor, in float (as make_vectors.py)
      const float divisor = c["divisor"].get<float>();
      std::vector<float> values(source.size());
      for (std::size_t i = 0; i < source.size(); ++i) values[i] = static_cast<float>(source[i]) / divisor;
      expect_resize_equals_opencv(c, values);
      ++float_cases;
    }
  }
  EXPECT_GE(u8_cases, 5);
  EXPECT_GE(float_cases, 5);
}

TEST(PyramidVectors, BilinearTapsEqualPython) {
  for (const auto& c : vectors()["bilinear_taps"]) {
    SCOPED_TRACE(c["size_in"].dump() + " -> " + c["size_out"].dump());
    const pyramid::Taps taps = pyramid::bilinear_taps(c["size_out"], c["size_in"]);
    EXPECT_EQ(taps.lower, c["lower"].get<std::vector<int>>());
    EXPECT_EQ(taps.upper, c["upper"].get<std::vector<int>>());
    const auto weight = c["weight"].get<std::vector<float>>();
    ASSERT_EQ(taps.weight.size(), weight.size());
    for (std::size_t i = 0; i < weight.size(); ++i)
      EXPECT_TRUE(bits_equal(taps.weight[i], weight[i])) << "position " << i << ": " << taps.weight[i];
  }
}

// The whole pyramid path (plan, INTER_AREA levels of image and map, exact tiling per level, correction, bilinear
// upsampling, blend, strength, rounding) around the same fake network: make_vectors.py's BoxBackend is
// svbr::test::BoxBackend in numpy, float for float.
TEST(PyramidVectors, DeblurThroughThePyramidEqualsPython) {
  const auto& v = vectors()["deblur"];
  const int height = v["height"], width = v["width"], box_radius = v["box_radius"];
  const auto image = v["image"].get<std::vector<std::uint8_t>>();
  const auto radius = v["radius_px"].get<std::vector<float>>();
  std::vector<float> image_f(image.size());
  for (std::size_t i = 0; i < image.size(); ++i) image_f[i] = static_cast<float>(image[i]) / 255.0f;
  const svbr::MapView map{radius.data(), height, width};
  for (const auto& c : v["cases"]) {
    SCOPED_TRACE(c["dtype"].get<std::string>() + " tile " + c["tile"].dump() + " halo " + c["halo"].dump() +
                 " batch " + c["batch"].dump() + " strength " + c["strength"].dump() + " max_radius_px " +
                 c["max_radius_px"].dump());
    const double limit = c["max_radius_px"];
    EXPECT_EQ(pyramid::level_plan(radius.data(), width, height, width, limit), c["levels"].get<std::vector<int>>());
    svbr::Deblurrer deblurrer(std::make_unique<svbr::test::BoxBackend>(box_radius),
                              {tile_of(c["tile"]), c["halo"].get<int>(), c["batch"].get<int>(),
                               c["strength"].get<double>(), limit});
    deblurrer.set_warning_handler({});
    if (c["dtype"] == "uint8") {
      EXPECT_EQ(deblurrer.deblur(image.data(), height, width, radius.data()),
                c["output"].get<std::vector<std::uint8_t>>());
    } else {
      const auto expected = c["output"].get<std::vector<float>>();
      std::vector<float> out(image_f.size());
      deblurrer.deblur(svbr::ImageView<const float>{image_f.data(), height, width}, map,
                       svbr::ImageView<float>{out.data(), height, width});
      int differing = 0;
      for (std::size_t i = 0; i < out.size(); ++i)
        if (!bits_equal(out[i], expected[i]) && ++differing <= 5)
          ADD_FAILURE() << "element " << i << ": " << out[i] << " expected " << expected[i];
      EXPECT_EQ(differing, 0);
    }
  }
}
