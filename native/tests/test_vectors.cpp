// The C++ tile plan, reflect indices, window gathering/stitching and pre/post-processing equal the Python
// runtime's on the shared vectors (native/tests/vectors, written by make_vectors.py from runtime/).
#include <gtest/gtest.h>

#include <cstring>

#include "svbr/deblurrer.hpp"
#include "svbr/tiling.hpp"
#include "test_helpers.hpp"

using svbr::test::load_vectors;

namespace {
std::optional<int> tile_of(const nlohmann::json& j) {
  return j.is_null() ? std::nullopt : std::optional<int>(j.get<int>());
}

bool bits_equal(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
}  // namespace

TEST(Vectors, TilePlansEqualPython) {
  const auto vectors = load_vectors("plans.json");
  ASSERT_GE(vectors["cases"].size(), 100u);
  for (const auto& c : vectors["cases"]) {
    const auto plan = svbr::plan_tiles(c["height"], c["width"], tile_of(c["tile"]), c["halo"], c["multiple"]);
    SCOPED_TRACE(c.dump().substr(0, 120));
    EXPECT_EQ(plan.tile_height, c["tile_height"].get<int>());
    EXPECT_EQ(plan.tile_width, c["tile_width"].get<int>());
    EXPECT_EQ(plan.halo, c["plan_halo"].get<int>());
    ASSERT_EQ(plan.origins.size(), c["origins"].size());
    for (std::size_t i = 0; i < plan.origins.size(); ++i) {
      EXPECT_EQ(plan.origins[i].row, c["origins"][i][0].get<int>());
      EXPECT_EQ(plan.origins[i].column, c["origins"][i][1].get<int>());
    }
  }
}

TEST(Vectors, BadPlansThrowLikePython) {
  for (const auto& c : load_vectors("plans.json")["errors"]) {
    try {
      svbr::plan_tiles(c["height"], c["width"], tile_of(c["tile"]), c["halo"], c["multiple"]);
      ADD_FAILURE() << "no exception for " << c.dump();
    } catch (const svbr::InvalidInput& e) {
      EXPECT_EQ(std::string(e.what()), c["message"].get<std::string>());
    }
  }
}

TEST(Vectors, ReflectIndicesEqualPython) {
  for (const auto& c : load_vectors("reflect.json")["cases"])
    EXPECT_EQ(svbr::reflect_indices(c["start"], c["stop"], c["size"]), c["indices"].get<std::vector<int>>())
        << c["start"] << " " << c["stop"] << " " << c["size"];
}

namespace {
// The integer-exact fake model of make_vectors.py: windows N×h×w×2 and N×h×w -> N×h×w×2.
std::vector<long long> fake_model(const std::vector<long long>& images, const std::vector<long long>& radii, int n,
                                  int h, int w, int r) {
  std::vector<long long> out(static_cast<std::size_t>(n) * h * w * 2);
  for (int b = 0; b < n; ++b)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        long long box = 0;
        for (int dy = -r; dy <= r; ++dy)
          for (int dx = -r; dx <= r; ++dx) {
            const int yy = y + dy, xx = x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w) box += images[((b * h + yy) * w + xx) * 2];
          }
        const std::size_t at = (static_cast<std::size_t>(b) * h + y) * w + x;
        out[at * 2] = box + 3 * radii[at];
        out[at * 2 + 1] = 2 * images[at * 2 + 1] - radii[at];
      }
  return out;
}
}  // namespace

TEST(Vectors, WindowsAndStitchingEqualPythonRunTiled) {
  const auto v = load_vectors("stitch.json");
  const int height = v["height"], width = v["width"], r = v["box_radius"];
  const auto image = v["image"].get<std::vector<long long>>();
  const auto radii = v["radii"].get<std::vector<long long>>();
  for (const auto& c : v["cases"]) {
    SCOPED_TRACE(c["tile"].dump() + " halo " + c["halo"].dump() + " multiple " + c["multiple"].dump());
    const auto plan = svbr::plan_tiles(height, width, tile_of(c["tile"]), c["halo"], c["multiple"]);
    const int wh = plan.window_height(), ww = plan.window_width(), batch = c["batch"];
    std::vector<long long> output(static_cast<std::size_t>(height) * width * 2, -1);
    for (std::size_t first = 0; first < plan.size(); first += batch) {
      const int n = static_cast<int>(std::min<std::size_t>(batch, plan.size() - first));
      std::vector<long long> windows(static_cast<std::size_t>(n) * wh * ww * 2), maps(static_cast<std::size_t>(n) * wh * ww);
      for (int i = 0; i < n; ++i) {
        svbr::extract_window(image.data(), width * 2, 2, plan, plan.origins[first + i], windows.data() + i * wh * ww * 2);
        svbr::extract_window(radii.data(), width, 1, plan, plan.origins[first + i], maps.data() + i * wh * ww);
      }
      const auto results = fake_model(windows, maps, n, wh, ww, r);
      for (int i = 0; i < n; ++i)
        svbr::stitch_window(output.data(), width * 2, 2, results.data() + i * wh * ww * 2, plan, plan.origins[first + i]);
    }
    EXPECT_EQ(output, c["output"].get<std::vector<long long>>());
  }
}

namespace {
/// Records the network inputs and answers with a fixed output (row 0 of every channel plane).
class RecordingBackend : public svbr::Backend {
 public:
  explicit RecordingBackend(std::vector<float> reply_rgb = {}) : reply_(std::move(reply_rgb)) { name_ = "recording"; }
  void run(const float* image, const float* map, int batch, int height, int width, float* sharp) override {
    const std::size_t plane = static_cast<std::size_t>(height) * width;
    image_.assign(image, image + batch * 3 * plane);
    map_.assign(map, map + batch * plane);
    width_ = width;
    std::fill(sharp, sharp + batch * 3 * plane, 0.5f);
    const std::size_t cols = reply_.size() / 3;
    for (int k = 0; k < 3; ++k)
      for (int y = 0; y < height; ++y)
        for (std::size_t x = 0; x < cols; ++x) sharp[k * plane + y * width + x] = reply_[k * cols + x];
  }
  std::vector<float> image_, map_, reply_;
  int width_ = 0;
};
}  // namespace

TEST(Vectors, PreprocessingEqualsPython) {
  const auto v = load_vectors("prepost.json");
  const auto bgr = v["u8_bgr"].get<std::vector<std::uint8_t>>();
  const auto expected = v["image_rgb_nchw"].get<std::vector<float>>();
  const int width = static_cast<int>(bgr.size() / 3);
  auto* backend = new RecordingBackend();
  svbr::Deblurrer deblurrer(std::unique_ptr<svbr::Backend>(backend), {std::nullopt, 0, 1});
  std::vector<float> zeros(width, 0.0f);
  deblurrer.deblur(bgr.data(), 1, width, zeros.data());
  const int ww = backend->width_;  // width rounded up to a multiple of 4; rows are reflections of row 0
  const std::size_t plane = backend->image_.size() / 3;
  for (int k = 0; k < 3; ++k)
    for (int x = 0; x < width; ++x)
      ASSERT_TRUE(bits_equal(backend->image_[k * plane + x], expected[k * width + x])) << "channel " << k << " x " << x;
  (void)ww;

  const auto radii = v["radii"].get<std::vector<float>>();
  const auto map = v["map"].get<std::vector<float>>();
  std::vector<std::uint8_t> grey(radii.size() * 3, 0);
  int warnings = 0;
  deblurrer.set_warning_handler([&](const std::string&) { ++warnings; });
  deblurrer.deblur(grey.data(), 1, static_cast<int>(radii.size()), radii.data());
  EXPECT_EQ(warnings, 1);  // radii above 6 px
  for (std::size_t x = 0; x < radii.size(); ++x)
    ASSERT_TRUE(bits_equal(backend->map_[x], map[x])) << "radius " << radii[x] << " -> " << backend->map_[x]
                                                      << " expected " << map[x];
}

TEST(Vectors, PostprocessingEqualsPython) {
  const auto v = load_vectors("prepost.json");
  const auto sharp = v["sharp_nchw"].get<std::vector<float>>();
  const int width = v["sharp_width"];
  const auto expected_u8 = v["out_u8_bgr"].get<std::vector<std::uint8_t>>();
  const auto expected_f32 = v["out_f32_bgr"].get<std::vector<float>>();
  svbr::Deblurrer deblurrer(std::make_unique<RecordingBackend>(sharp), {std::nullopt, 0, 1});
  std::vector<float> zeros(width, 0.0f);
  std::vector<std::uint8_t> grey(width * 3, 0);
  EXPECT_EQ(deblurrer.deblur(grey.data(), 1, width, zeros.data()), expected_u8);
  std::vector<float> grey_f(width * 3, 0.0f), out_f(width * 3);
  deblurrer.deblur(svbr::ImageView<const float>{grey_f.data(), 1, width}, svbr::MapView{zeros.data(), 1, width},
                   svbr::ImageView<float>{out_f.data(), 1, width});
  for (int i = 0; i < width * 3; ++i) ASSERT_TRUE(bits_equal(out_f[i], expected_f32[i])) << i;
}
