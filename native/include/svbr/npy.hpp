// svbr/npy.hpp: read and write NumPy .npy arrays (little-endian, C order) without third-party code.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace svbr {

struct NpyArray {
  std::vector<std::size_t> shape;
  std::string dtype;        ///< as stored, e.g. "<f4", "<f8", "|u1"
  std::vector<float> data;  ///< values converted to float32 (like astype(np.float32))
};

/// Read a .npy of any real dtype (float16/32/64, signed/unsigned 8..64-bit ints, bool refused).
/// Throws InvalidInput for a missing/unreadable file, Fortran order, big-endian or non-numeric data.
NpyArray load_npy(const std::string& path);

/// Write float32 data as a C-order "<f4" .npy.
void save_npy(const std::string& path, const float* data, const std::vector<std::size_t>& shape);

}  // namespace svbr
