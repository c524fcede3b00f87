// Shared helpers for det's CUDA kernels (built only when a CUDA toolkit is present; see setup.py).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdint>

namespace det {
namespace cuda {

constexpr int kThreads = 256;

inline int64_t blocks_for(int64_t n, int64_t threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return b < 1 ? 1 : (b > 65535 * 64 ? 65535 * 64 : b);
}

// Grid-stride loop: kernels launched with a capped grid still visit every element.
#define DET_CUDA_LOOP(i, n)                                                                    \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace cuda
}  // namespace det
