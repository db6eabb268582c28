// svbr/errors.hpp: the exceptions svbr throws. Every message names the problem and the offending value.
#pragma once

#include <stdexcept>
#include <string>

namespace svbr {

/// Base of every svbr exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad arguments to a call: shapes, sizes, empty images, NaN/negative radii, bad options
/// (Python's ValueError in runtime/deblurrer.py and runtime/tiling.py).
class InvalidInput : public Error {
 public:
  using Error::Error;
};

/// A model file that is missing, unreadable or breaks the I/O contract (FileNotFoundError / ValueError in Python).
class ModelError : public Error {
 public:
  using Error::Error;
};

/// A backend that was not compiled in, or cannot run on this machine (Python's RuntimeError).
class BackendUnavailable : public Error {
 public:
  using Error::Error;
};

}  // namespace svbr
