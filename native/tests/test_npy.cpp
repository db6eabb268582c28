#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "svbr/errors.hpp"
#include "svbr/npy.hpp"

namespace {
std::string temp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("svbr_test_" + name)).string();
}

void write_npy(const std::string& path, const std::string& descr, const std::string& shape, const void* data,
               std::size_t bytes, bool fortran = false) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  const char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(header.size()), 0};
  f.write(pre, 10);
  f << header;
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}
}  // namespace

TEST(Npy, RoundTripFloat32) {
  const std::vector<float> data{0.f, 1.5f, -2.25f, 6.f, 1e-8f, 3.f};
  svbr::save_npy(temp("f4.npy"), data.data(), {2, 3});
  const auto a = svbr::load_npy(temp("f4.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(a.dtype, "<f4");
  EXPECT_EQ(a.data, data);
}

TEST(Npy, ConvertsOtherDtypesLikeAstypeFloat32) {
  const double d[] = {0.1, 2.5, 1e300 * 0 + 3.0000000001};
  write_npy(temp("f8.npy"), "<f8", "3,", d, sizeof d);
  const auto a = svbr::load_npy(temp("f8.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{3}));
  EXPECT_EQ(a.data, (std::vector<float>{0.1f, 2.5f, static_cast<float>(3.0000000001)}));
  const std::uint16_t u[] = {0, 7, 65535, 3};
  write_npy(temp("u2.npy"), "<u2", "2, 2", u, sizeof u);
  EXPECT_EQ(svbr::load_npy(temp("u2.npy")).data, (std::vector<float>{0, 7, 65535, 3}));
  const std::int64_t i[] = {-4, 5};
  write_npy(temp("i8.npy"), "<i8", "1, 2", i, sizeof i);
  EXPECT_EQ(svbr::load_npy(temp("i8.npy")).data, (std::vector<float>{-4, 5}));
  const std::uint16_t h[] = {0x3c00, 0x4600, 0x3555};  // 1, 6, 0.333251953125
  write_npy(temp("f2.npy"), "<f2", "3,", h, sizeof h);
  EXPECT_EQ(svbr::load_npy(temp("f2.npy")).data, (std::vector<float>{1.0f, 6.0f, 0.333251953125f}));
}

TEST(Npy, RejectsWhatItCannotRead) {
  const float f[] = {1, 2, 3, 4};
  write_npy(temp("fortran.npy"), "<f4", "2, 2", f, sizeof f, true);
  EXPECT_THROW(svbr::load_npy(temp("fortran.npy")), svbr::InvalidInput);
  write_npy(temp("big.npy"), ">f4", "4,", f, sizeof f);
  EXPECT_THROW(svbr::load_npy(temp("big.npy")), svbr::InvalidInput);
  write_npy(temp("bool.npy"), "|b1", "4,", f, 4);
  EXPECT_THROW(svbr::load_npy(temp("bool.npy")), svbr::InvalidInput);
  write_npy(temp("short.npy"), "<f4", "8,", f, sizeof f);
  EXPECT_THROW(svbr::load_npy(temp("short.npy")), svbr::InvalidInput);
  EXPECT_THROW(svbr::load_npy(temp("missing.npy")), svbr::InvalidInput);
  std::ofstream(temp("text.npy")) << "not numpy";
  EXPECT_THROW(svbr::load_npy(temp("text.npy")), svbr::InvalidInput);
}
