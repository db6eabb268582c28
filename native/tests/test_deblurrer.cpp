// Deblurrer around a fake backend: exact tiling (tiled == full frame), batching, strides, options, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "svbr/deblurrer.hpp"
#include "svbr/errors.hpp"
#include "test_helpers.hpp"

using svbr::ChannelOrder;
using svbr::Deblurrer;
using svbr::ImageView;
using svbr::MapView;
using svbr::test::BoxBackend;

namespace {
struct Sample {
  int height, width;
  std::vector<std::uint8_t> image;
  std::vector<float> radius;
};

Sample make_sample(int height, int width, unsigned seed = 1) {
  std::mt19937 rng(seed);
  Sample s{height, width, std::vector<std::uint8_t>(static_cast<std::size_t>(height) * width * 3),
           std::vector<float>(static_cast<std::size_t>(height) * width)};
  for (auto& v : s.image) v = static_cast<std::uint8_t>(rng() % 256);
  // 0 .. 5.9 px: the single full-resolution pass (radii above 6 px add pyramid levels; tests/test_pyramid.cpp)
  for (auto& v : s.radius) v = static_cast<float>(rng() % 1000) / 170.0f;
  return s;
}

std::vector<std::uint8_t> run(const Sample& s, std::optional<int> tile, int halo, int batch, int radius = 3) {
  Deblurrer d(std::make_unique<BoxBackend>(radius), {tile, halo, batch});
  d.set_warning_handler({});
  return d.deblur(s.image.data(), s.height, s.width, s.radius.data());
}
}  // namespace

TEST(Deblurrer, TiledEqualsFullFrameWhenHaloCoversTheReceptiveField) {
  for (auto [h, w] : {std::pair{37, 41}, std::pair{1, 1}, std::pair{5, 64}, std::pair{64, 3}}) {
    const Sample s = make_sample(h, w);
    const auto full = run(s, std::nullopt, 4, 1);
    EXPECT_EQ(run(s, 8, 4, 1), full) << h << "x" << w;
    EXPECT_EQ(run(s, 12, 4, 3), full) << h << "x" << w;
    EXPECT_EQ(run(s, 4, 8, 7), full) << h << "x" << w;
  }
}

TEST(Deblurrer, TooSmallHaloChangesTheResult) {  // the test above is not vacuous
  const Sample s = make_sample(37, 41);
  EXPECT_NE(run(s, 8, 0, 1), run(s, std::nullopt, 4, 1));
}

TEST(Deblurrer, BatchesWindowsAndReportsProgress) {
  const Sample s = make_sample(37, 41);
  auto* backend = new BoxBackend(3, {}, 4);
  Deblurrer d(std::unique_ptr<svbr::Backend>(backend), {8, 4, std::nullopt});
  EXPECT_EQ(d.batch_size(), 4);  // the backend's preference
  EXPECT_EQ(d.count_tiles(37, 41), 30u);
  std::vector<std::uint8_t> out(s.image.size());
  std::vector<std::size_t> progress;
  d.deblur(ImageView<const std::uint8_t>{s.image.data(), 37, 41}, MapView{s.radius.data(), 37, 41},
           ImageView<std::uint8_t>{out.data(), 37, 41}, ChannelOrder::BGR,
           [&](std::size_t done, std::size_t total) {
             EXPECT_EQ(total, 30u);
             progress.push_back(done);
           });
  EXPECT_EQ(progress, (std::vector<std::size_t>{4, 8, 12, 16, 20, 24, 28, 30}));
  EXPECT_EQ(backend->calls, 8);
  EXPECT_EQ(backend->windows, 30);
  EXPECT_EQ(backend->last_height, 8 + 2 * 4);
}

TEST(Deblurrer, RowStridesAndChannelOrder) {
  const Sample s = make_sample(20, 30);
  const auto expected = run(s, 8, 4, 1);
  // the same image inside a wider buffer (padding per row), map too
  const int pad = 7;
  std::vector<std::uint8_t> wide(20 * (30 * 3 + pad), 99), out(20 * (30 * 3 + pad), 0);
  std::vector<float> wide_map(20 * (30 + pad), 1e9f);
  for (int y = 0; y < 20; ++y) {
    std::copy_n(s.image.data() + y * 90, 90, wide.data() + y * (90 + pad));
    std::copy_n(s.radius.data() + y * 30, 30, wide_map.data() + y * (30 + pad));
  }
  Deblurrer d(std::make_unique<BoxBackend>(3), {8, 4, 1});
  d.deblur(ImageView<const std::uint8_t>{wide.data(), 20, 30, 3, 90 + pad}, MapView{wide_map.data(), 20, 30, 30 + pad},
           ImageView<std::uint8_t>{out.data(), 20, 30, 3, 90 + pad});
  for (int y = 0; y < 20; ++y)
    ASSERT_TRUE(std::equal(expected.begin() + y * 90, expected.begin() + (y + 1) * 90, out.begin() + y * (90 + pad)));
  // RGB input with RGB order gives the RGB version of the BGR result
  std::vector<std::uint8_t> rgb(s.image);
  for (std::size_t i = 0; i < rgb.size(); i += 3) std::swap(rgb[i], rgb[i + 2]);
  auto out_rgb = d.deblur(rgb.data(), 20, 30, s.radius.data(), ChannelOrder::RGB);
  for (std::size_t i = 0; i < out_rgb.size(); i += 3) std::swap(out_rgb[i], out_rgb[i + 2]);
  EXPECT_EQ(out_rgb, expected);
}

TEST(Deblurrer, FloatImagesMatchUint8Path) {
  const Sample s = make_sample(13, 17);
  std::vector<float> f(s.image.size()), out(s.image.size());
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(s.image[i]) / 255.0f;
  Deblurrer d(std::make_unique<BoxBackend>(3), {8, 4, 1});
  d.deblur(ImageView<const float>{f.data(), 13, 17}, MapView{s.radius.data(), 13, 17}, ImageView<float>{out.data(), 13, 17});
  const auto u8 = d.deblur(s.image.data(), 13, 17, s.radius.data());
  for (std::size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(static_cast<int>(u8[i]), static_cast<int>(std::nearbyint(out[i] * 255.0f))) << i;
}

// --- the error catalogue (runtime/deblurrer.py validate_inputs and Deblurrer.__init__) ------------------------------

#define EXPECT_THROW_MSG(stmt, type, text)                                                         \
  try {                                                                                            \
    stmt;                                                                                          \
    ADD_FAILURE() << "no exception from " #stmt;                                                   \
  } catch (const type& e) {                                                                        \
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << "message: " << e.what();     \
  }

TEST(BadInput, ImagesAndMaps) {
  Deblurrer d(std::make_unique<BoxBackend>(1), {8, 4, 1});
  std::vector<std::uint8_t> img(6 * 5 * 4, 0), out(6 * 5 * 3);
  std::vector<float> map(6 * 5, 1.0f);
  using U8 = ImageView<const std::uint8_t>;
  ImageView<std::uint8_t> o{out.data(), 6, 5};
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 0, 5}, MapView{map.data(), 0, 5}, o), svbr::InvalidInput, "image is empty");
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 6, 5, 4}, MapView{map.data(), 6, 5}, o), svbr::InvalidInput,
                   "3 colour channels");
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 6, 5}, MapView{map.data(), 5, 6}, o), svbr::InvalidInput,
                   "blur_map size (5, 6) does not match the image size (6, 5)");
  EXPECT_THROW_MSG(d.deblur(U8{nullptr, 6, 5}, MapView{map.data(), 6, 5}, o), svbr::InvalidInput, "null pointer");
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 6, 5}, MapView{map.data(), 6, 5}, (ImageView<std::uint8_t>{out.data(), 5, 5})),
                   svbr::InvalidInput, "output image must be (6, 5, 3)");
  map[7] = std::nanf("");
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 6, 5}, MapView{map.data(), 6, 5}, o), svbr::InvalidInput,
                   "blur_map contains NaN or infinite radii");
  map[7] = INFINITY;
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 6, 5}, MapView{map.data(), 6, 5}, o), svbr::InvalidInput, "NaN or infinite");
  map[7] = -0.5f;
  EXPECT_THROW_MSG(d.deblur(U8{img.data(), 6, 5}, MapView{map.data(), 6, 5}, o), svbr::InvalidInput,
                   "blur_map contains negative radii (min -0.5 px)");
  map[7] = 1.0f;
  std::vector<float> fimg(6 * 5 * 3, 0.5f), fout(6 * 5 * 3);
  fimg[3] = 1.5f;
  using F = ImageView<const float>;
  EXPECT_THROW_MSG(d.deblur(F{fimg.data(), 6, 5}, MapView{map.data(), 6, 5}, ImageView<float>{fout.data(), 6, 5}),
                   svbr::InvalidInput, "float32 image values must lie in [0, 1], got 0.5..1.5");
  fimg[3] = std::nanf("");
  EXPECT_THROW_MSG(d.deblur(F{fimg.data(), 6, 5}, MapView{map.data(), 6, 5}, ImageView<float>{fout.data(), 6, 5}),
                   svbr::InvalidInput, "float32 image contains NaN or infinite values");
}

TEST(BadInput, OptionsBackendsAndModels) {
  EXPECT_THROW_MSG(Deblurrer(std::make_unique<BoxBackend>(1), {0, 4, 1}), svbr::InvalidInput, "tile must be a positive");
  EXPECT_THROW_MSG(Deblurrer(std::make_unique<BoxBackend>(1), {8, -1, 1}), svbr::InvalidInput, "halo must be >= 0");
  EXPECT_THROW_MSG(Deblurrer(std::make_unique<BoxBackend>(1), {8, 4, 0}), svbr::InvalidInput, "batch_size must be >= 1");
  EXPECT_THROW_MSG(Deblurrer(std::unique_ptr<svbr::Backend>()), svbr::InvalidInput, "needs a backend");
  EXPECT_THROW_MSG(Deblurrer(std::make_unique<BoxBackend>(1, std::map<std::string, std::string>{{"svbr.max_radius_px", "8"}})),
                   svbr::ModelError, "was exported with svbr.max_radius_px=8, this runtime uses 6");
  EXPECT_THROW_MSG(Deblurrer(std::make_unique<BoxBackend>(1, std::map<std::string, std::string>{{"svbr.size_multiple", "8"}})),
                   svbr::ModelError, "svbr.size_multiple=8");
  // matching metadata is accepted
  Deblurrer ok(std::make_unique<BoxBackend>(1, std::map<std::string, std::string>{{"svbr.max_radius_px", "6.0"},
                                                                                {"svbr.size_multiple", "4"}}));
  EXPECT_EQ(ok.halo(), 84);
  EXPECT_EQ(ok.tile(), 512);
  EXPECT_THROW_MSG(svbr::create_backend("auto", "/nonexistent/model.onnx"), svbr::ModelError,
                   "model not found: /nonexistent/model.onnx");
  EXPECT_THROW_MSG(svbr::create_backend("nonsense", SVBR_BUNDLED_MODEL), svbr::InvalidInput, "unknown backend 'nonsense'");
}

TEST(Deblurrer, WarnsOnlyAboutRadiiBeyondMaxRadius) {
  Sample s = make_sample(9, 9);
  s.radius[5] = 9.5f;
  std::string warning;
  auto deblur_with = [&](double max_radius_px) {
    Deblurrer d(std::make_unique<BoxBackend>(1), {8, 4, 1, 1.0, max_radius_px});
    warning.clear();
    d.set_warning_handler([&](const std::string& m) { warning = m; });
    d.deblur(s.image.data(), 9, 9, s.radius.data());
  };
  deblur_with(48.0);  // the default: 9.5 px is deblurred on the 1/2 level, nothing is clipped
  EXPECT_EQ(warning, "");
  deblur_with(6.0);  // one full-resolution pass, as before the pyramid
  EXPECT_EQ(warning, "blur_map has radii up to 9.5 px; SVBR-Net is trained for radii up to 6 px, larger radii are "
                     "clipped to 6 px (max_radius_px=6: no coarser pyramid levels)");
  s.radius[5] = 60.0f;
  deblur_with(48.0);
  EXPECT_EQ(warning, "blur_map has radii up to 60 px; radii above max_radius_px=48 px are clipped to 48 px (its "
                     "coarsest pyramid level, 1/8, brings 48 px into the 6 px SVBR-Net is trained for; raise "
                     "max_radius_px, up to 192 px, to deblur more)");
}
