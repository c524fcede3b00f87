// Shared helpers for det's CPU kernels.
#pragma once

// Narrow ATen headers (methods + the few factory functions used) instead of <ATen/ATen.h>:
// each translation unit compiles in about half the time.
#define TORCH_ASSERT_ONLY_METHOD_OPERATORS
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include <cmath>
#include <cstdint>
#include <limits>

namespace det {

// Largest value of type T that is <= t, so that `T(x) > tf` equals `double(x) > t` for every
// T-valued x (torchvision compares a float IoU with a double threshold).
template <typename T>
inline T threshold_floor(double t) {
  T f = static_cast<T>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<T>::infinity());
  return f;
}

// Column-major (structure of arrays) copy of N x 4 boxes in a given order, with areas.
template <typename T>
struct BoxesSoA {
  std::vector<T> x1, y1, x2, y2, area;
  void resize(int64_t n) {
    x1.resize(n); y1.resize(n); x2.resize(n); y2.resize(n); area.resize(n);
  }
};

}  // namespace det
