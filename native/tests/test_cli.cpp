// svbr-native end to end: its output equals the library's, and it fails with exit code 2 and one line on bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <random>

#include "svbr/image_io.hpp"
#include "svbr/svbr.hpp"

namespace fs = std::filesystem;

namespace {
const fs::path kDir = fs::path(SVBR_BINARY_DIR) / "cli_test";

int run(const std::string& args) {
  const std::string command = std::string(SVBR_CLI) + " " + args + " > " + (kDir / "out.txt").string() + " 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string output_text() {
  std::ifstream f(kDir / "out.txt");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void make_inputs(int h, int w) {
  fs::create_directories(kDir);
  std::mt19937 rng(3);
  std::vector<std::uint8_t> bgr(h * w * 3);
  for (auto& v : bgr) v = static_cast<std::uint8_t>(rng() % 256);
  std::vector<float> radius(h * w);
  for (auto& v : radius) v = static_cast<float>(rng() % 700) / 100.0f;
  svbr::io::write_bgr((kDir / "in.png").string(), bgr.data(), h, w);
  svbr::save_npy((kDir / "in.npy").string(), radius.data(), {std::size_t(h), std::size_t(w)});
}
}  // namespace

TEST(Cli, OutputEqualsTheLibrary) {
  const int h = 45, w = 38;
  make_inputs(h, w);
  ASSERT_EQ(run((kDir / "in.png").string() + " --blur-map " + (kDir / "in.npy").string() + " -o " +
                (kDir / "out.png").string() + " --tile 32 --model " + SVBR_BUNDLED_MODEL),
            0)
      << output_text();
  // radii up to 6.99 px: the default --max-radius 48 deblurs them on the 1/2 level, so nothing is clipped
  EXPECT_EQ(output_text().find("clipped"), std::string::npos) << output_text();
  const auto image = svbr::io::read_bgr((kDir / "in.png").string());
  const auto map = svbr::load_npy((kDir / "in.npy").string());
  svbr::Deblurrer d(SVBR_BUNDLED_MODEL, "auto", {std::nullopt});
  d.set_warning_handler({});
  const auto expected = d.deblur(image.pixels.data(), h, w, map.data.data());
  EXPECT_EQ(svbr::io::read_bgr((kDir / "out.png").string()).pixels, expected);  // PNG is lossless
  // --max-radius 6: one full-resolution pass, and the warning names what it clips
  ASSERT_EQ(run((kDir / "in.png").string() + " --blur-map " + (kDir / "in.npy").string() + " -o " +
                (kDir / "out.png").string() + " --tile 32 --max-radius 6 --model " + SVBR_BUNDLED_MODEL),
            0)
      << output_text();
  EXPECT_NE(output_text().find("radii up to 6.99 px"), std::string::npos) << output_text();
}

TEST(Cli, BadInputExitsWithCode2AndOneLine) {
  make_inputs(12, 10);
  const std::string img = (kDir / "in.png").string(), npy = (kDir / "in.npy").string();
  const std::string out = " -o " + (kDir / "x.png").string();
  struct Case {
    std::string args, message;
  } cases[] = {
      {"/nonexistent.png --blur-map " + npy + out, "input image not found"},
      {img + " --blur-map /nonexistent.npy" + out, "blur map not found"},
      {img + " --blur-map " + npy + out + " --tile -4", "--tile must be >= 0"},
      {img + " --blur-map " + npy + " -o x.tiff", "cannot write images with suffix '.tiff'"},
      {img + " --blur-map " + npy + out + " --backend nonsense", "unknown backend 'nonsense'"},
      {img + " --blur-map " + img + out, "is a PNG: give --map-scale"},
      {img + " --blur-map " + npy + out + " --model /nonexistent.onnx", "model not found"},
      {img + " --blur-map " + npy + out + " --frobnicate", "unknown option --frobnicate"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(run(c.args), 2) << c.args;
    EXPECT_EQ(output_text().rfind("svbr-native: error: ", 0), 0u) << output_text();
    EXPECT_NE(output_text().find(c.message), std::string::npos) << output_text();
  }
  // map of the wrong size
  std::vector<float> small(20, 1.0f);
  svbr::save_npy((kDir / "small.npy").string(), small.data(), {4, 5});
  EXPECT_EQ(run(img + " --blur-map " + (kDir / "small.npy").string() + out), 2);
  EXPECT_NE(output_text().find("is 5×4 px but image"), std::string::npos) << output_text();
  // negative radii
  std::vector<float> negative(120, 1.0f);
  negative[3] = -2.0f;
  svbr::save_npy((kDir / "neg.npy").string(), negative.data(), {12, 10});
  EXPECT_EQ(run(img + " --blur-map " + (kDir / "neg.npy").string() + out), 2);
  EXPECT_NE(output_text().find("in.png: blur_map contains negative radii"), std::string::npos) << output_text();
}
