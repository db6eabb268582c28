#include <algorithm>
#include <cctype>
#include <filesystem>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "svbr/errors.hpp"
#include "svbr/image_io.hpp"

namespace svbr::io {

namespace {
std::string suffix(const std::string& path) {
  std::string s = std::filesystem::path(path).extension().string();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
}  // namespace

Image read_bgr(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InvalidInput("input image not found: " + path);
  int w = 0, h = 0, c = 0;
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &c, 3);  // 16-bit PNGs come back as their high bytes
  if (!data) throw InvalidInput("cannot read " + path + " as an image (" + stbi_failure_reason() + ")");
  Image image{h, w, 3, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
  for (std::size_t i = 0; i < image.pixels.size(); i += 3) {  // RGB -> BGR
    image.pixels[i] = data[i + 2];
    image.pixels[i + 1] = data[i + 1];
    image.pixels[i + 2] = data[i];
  }
  stbi_image_free(data);
  return image;
}

std::vector<float> read_grey_png(const std::string& path, int& height, int& width) {
  if (!std::filesystem::is_regular_file(path)) throw InvalidInput("blur map not found: " + path);
  int c = 0;
  std::vector<float> values;
  if (stbi_is_16_bit(path.c_str())) {
    stbi_us* data = stbi_load_16(path.c_str(), &width, &height, &c, 0);
    if (!data) throw InvalidInput("cannot read " + path + " as a PNG");
    values.assign(data, data + static_cast<std::size_t>(width) * height * c);
    stbi_image_free(data);
  } else {
    stbi_uc* data = stbi_load(path.c_str(), &width, &height, &c, 0);
    if (!data) throw InvalidInput("cannot read " + path + " as a PNG");
    values.assign(data, data + static_cast<std::size_t>(width) * height * c);
    stbi_image_free(data);
  }
  if (c != 1)
    throw InvalidInput("blur map " + path + " must be an 8- or 16-bit single-channel PNG, got " + std::to_string(c) +
                       " channels");
  return values;
}

bool can_write(const std::string& path) {
  const std::string s = suffix(path);
  return s == ".png" || s == ".jpg" || s == ".jpeg" || s == ".bmp";
}

void write_bgr(const std::string& path, const std::uint8_t* bgr, int height, int width) {
  if (!can_write(path)) throw InvalidInput("cannot write images with suffix '" + suffix(path) + "': " + path);
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = bgr[i + 2];
    rgb[i + 1] = bgr[i + 1];
    rgb[i + 2] = bgr[i];
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const std::string s = suffix(path);
  int ok = 0;
  if (s == ".png") ok = stbi_write_png(path.c_str(), width, height, 3, rgb.data(), width * 3);
  else if (s == ".bmp") ok = stbi_write_bmp(path.c_str(), width, height, 3, rgb.data());
  else ok = stbi_write_jpg(path.c_str(), width, height, 3, rgb.data(), 95);
  if (!ok) throw InvalidInput("failed to write " + path);
}

}  // namespace svbr::io
