// svbr/image_io.hpp: PNG/JPEG files <-> BGR uint8 images (stb_image; part of the CLI, not of svbr::svbr).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace svbr::io {

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;  ///< H×W×channels, interleaved
};

/// An image file as H×W×3 BGR uint8, like cv2.imread(path, IMREAD_COLOR): grey is expanded, alpha dropped, 16-bit
/// samples reduced to their high byte. PNG decodes identically to OpenCV; JPEG decoders may differ by a level or
/// two (and EXIF orientation is not applied). Throws svbr::InvalidInput.
Image read_bgr(const std::string& path);

/// An 8- or 16-bit single-channel PNG as float values (a blur map before --map-scale).
std::vector<float> read_grey_png(const std::string& path, int& height, int& width);

/// Whether write_bgr can write this suffix (.png, .jpg, .jpeg, .bmp).
bool can_write(const std::string& path);

/// Write H×W×3 BGR uint8 (contiguous) as PNG, JPEG (quality 95, as OpenCV's default) or BMP.
void write_bgr(const std::string& path, const std::uint8_t* bgr, int height, int width);

}  // namespace svbr::io
