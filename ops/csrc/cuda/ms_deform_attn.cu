// Multi-scale deformable attention on CUDA, with the conventions of ops/csrc/cpu/ms_deform_attn.cpp
// (mmcv's): value (B, N, heads, C), spatial_shapes (L, 2) as (H, W), level_start_index (L,),
// sampling_locations (B, Q, heads, L, P, 2) as (x, y) in [0, 1], attention_weights
// (B, Q, heads, L, P); output (B, Q, heads * C); bilinear reads with zeros outside the map.
// Forward: one thread per output element (b, q, h, c), so a warp reads contiguous channels.
// Backward: the same threads scatter into the value gradient and add their channel's share of
// the location and attention gradients with atomics.
#include "common_cuda.cuh"

#include <ATen/ops/zeros.h>

#include <tuple>

namespace det {
namespace {

struct Geometry {
  int64_t B, N, heads, C, Q, L, P;
};

// Bilinear corners of one sample; returns false when the sample lies wholly outside the map.
template <typename T>
struct Corners {
  int64_t row[4];
  T w[4];
  bool valid[4];
  T lh, lw, hh, hw;

  __device__ bool compute(T x, T y, int64_t H, int64_t W, int64_t start) {
    const T h_im = y * static_cast<T>(H) - T(0.5);
    const T w_im = x * static_cast<T>(W) - T(0.5);
    if (!(h_im > T(-1) && w_im > T(-1) && h_im < static_cast<T>(H) && w_im < static_cast<T>(W))) return false;
    const int64_t h_low = static_cast<int64_t>(floor(h_im)), w_low = static_cast<int64_t>(floor(w_im));
    lh = h_im - static_cast<T>(h_low);
    lw = w_im - static_cast<T>(w_low);
    hh = T(1) - lh;
    hw = T(1) - lw;
    const int64_t hs[4] = {h_low, h_low, h_low + 1, h_low + 1};
    const int64_t ws[4] = {w_low, w_low + 1, w_low, w_low + 1};
    const T wts[4] = {hh * hw, hh * lw, lh * hw, lh * lw};
    for (int i = 0; i < 4; ++i) {
      valid[i] = hs[i] >= 0 && hs[i] < H && ws[i] >= 0 && ws[i] < W;
      row[i] = start + hs[i] * W + ws[i];
      w[i] = valid[i] ? wts[i] : T(0);
    }
    return true;
  }
};

template <typename T>
__global__ void forward_kernel(const T* __restrict__ value, const int64_t* __restrict__ shapes,
                               const int64_t* __restrict__ starts, const T* __restrict__ loc,
                               const T* __restrict__ attn, T* __restrict__ out, Geometry g) {
  const int64_t total = g.B * g.Q * g.heads * g.C, row_stride = g.heads * g.C, samples = g.L * g.P;
  DET_CUDA_LOOP(i, total) {
    const int64_t c = i % g.C, t = i / g.C;  // t = (b * Q + q) * heads + h
    const int64_t h = t % g.heads, b = t / (g.heads * g.Q);
    const T* v = value + b * g.N * row_stride + h * g.C + c;
    T acc = T(0);
    Corners<T> k4;
    for (int64_t l = 0; l < g.L; ++l) {
      const int64_t H = shapes[2 * l], W = shapes[2 * l + 1], start = starts[l];
      for (int64_t p = 0; p < g.P; ++p) {
        const int64_t k = t * samples + l * g.P + p;
        if (!k4.compute(loc[2 * k], loc[2 * k + 1], H, W, start)) continue;
        const T a = attn[k];
        for (int j = 0; j < 4; ++j) {
          if (k4.valid[j]) acc += k4.w[j] * a * v[k4.row[j] * row_stride];
        }
      }
    }
    out[i] = acc;
  }
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ grad, const T* __restrict__ value,
                                const int64_t* __restrict__ shapes, const int64_t* __restrict__ starts,
                                const T* __restrict__ loc, const T* __restrict__ attn, T* __restrict__ gvalue,
                                T* __restrict__ gloc, T* __restrict__ gattn, Geometry g) {
  const int64_t total = g.B * g.Q * g.heads * g.C, row_stride = g.heads * g.C, samples = g.L * g.P;
  DET_CUDA_LOOP(i, total) {
    const int64_t c = i % g.C, t = i / g.C;
    const int64_t h = t % g.heads, b = t / (g.heads * g.Q);
    const int64_t base = b * g.N * row_stride + h * g.C + c;
    const T go = grad[i];
    Corners<T> k4;
    for (int64_t l = 0; l < g.L; ++l) {
      const int64_t H = shapes[2 * l], W = shapes[2 * l + 1], start = starts[l];
      for (int64_t p = 0; p < g.P; ++p) {
        const int64_t k = t * samples + l * g.P + p;
        if (!k4.compute(loc[2 * k], loc[2 * k + 1], H, W, start)) continue;
        const T a = attn[k];
        T dot[4] = {T(0), T(0), T(0), T(0)};
        for (int j = 0; j < 4; ++j) {
          if (!k4.valid[j]) continue;
          dot[j] = go * value[base + k4.row[j] * row_stride];
          atomicAdd(gvalue + base + k4.row[j] * row_stride, k4.w[j] * a * go);
        }
        atomicAdd(gattn + k, k4.w[0] * dot[0] + k4.w[1] * dot[1] + k4.w[2] * dot[2] + k4.w[3] * dot[3]);
        const T d_lw = k4.hh * (dot[1] - dot[0]) + k4.lh * (dot[3] - dot[2]);
        const T d_lh = k4.hw * (dot[2] - dot[0]) + k4.lw * (dot[3] - dot[1]);
        atomicAdd(gloc + 2 * k, a * d_lw * static_cast<T>(W));
        atomicAdd(gloc + 2 * k + 1, a * d_lh * static_cast<T>(H));
      }
    }
  }
}

void check_inputs(const at::Tensor& value, const at::Tensor& shapes, const at::Tensor& starts, const at::Tensor& loc,
                  const at::Tensor& attn) {
  TORCH_CHECK(value.is_cuda() && shapes.is_cuda() && starts.is_cuda() && loc.is_cuda() && attn.is_cuda(),
              "det ms_deform_attn: CUDA tensors expected (all five on the GPU)");
  TORCH_CHECK(value.scalar_type() == at::kFloat || value.scalar_type() == at::kDouble,
              "det ms_deform_attn: float32 or float64 expected, got ", value.scalar_type());
  TORCH_CHECK(loc.scalar_type() == value.scalar_type() && attn.scalar_type() == value.scalar_type(),
              "det ms_deform_attn: value, sampling_locations and attention_weights dtypes differ");
  TORCH_CHECK(shapes.scalar_type() == at::kLong && starts.scalar_type() == at::kLong,
              "det ms_deform_attn: spatial_shapes and level_start_index must be int64");
  TORCH_CHECK(value.dim() == 4, "det ms_deform_attn: value must be (B, N, heads, C), got ", value.sizes());
  TORCH_CHECK(loc.dim() == 6 && loc.size(5) == 2,
              "det ms_deform_attn: sampling_locations must be (B, Q, heads, L, P, 2), got ", loc.sizes());
  const int64_t L = loc.size(3);
  TORCH_CHECK(shapes.dim() == 2 && shapes.size(0) == L && shapes.size(1) == 2,
              "det ms_deform_attn: spatial_shapes must be (L, 2) with L = ", L, ", got ", shapes.sizes());
  TORCH_CHECK(starts.dim() == 1 && starts.size(0) == L, "det ms_deform_attn: level_start_index must be (L,)");
  TORCH_CHECK(loc.size(0) == value.size(0) && loc.size(2) == value.size(2),
              "det ms_deform_attn: batch/heads of sampling_locations ", loc.sizes(), " and value ", value.sizes(),
              " differ");
  TORCH_CHECK(attn.dim() == 5 && attn.size(0) == loc.size(0) && attn.size(1) == loc.size(1) &&
                  attn.size(2) == loc.size(2) && attn.size(3) == L && attn.size(4) == loc.size(4),
              "det ms_deform_attn: attention_weights must be (B, Q, heads, L, P), got ", attn.sizes());
}

Geometry geometry(const at::Tensor& value, const at::Tensor& loc) {
  return Geometry{value.size(0), value.size(1), value.size(2), value.size(3), loc.size(1), loc.size(3), loc.size(4)};
}

at::Tensor ms_deform_attn_forward_cuda(const at::Tensor& value_in, const at::Tensor& shapes_in,
                                       const at::Tensor& starts_in, const at::Tensor& loc_in,
                                       const at::Tensor& attn_in) {
  check_inputs(value_in, shapes_in, starts_in, loc_in, attn_in);
  const c10::cuda::CUDAGuard guard(value_in.device());
  const Geometry g = geometry(value_in, loc_in);
  at::Tensor out = at::zeros({g.B, g.Q, g.heads * g.C}, value_in.options());
  if (out.numel() == 0 || g.N == 0) return out;
  const at::Tensor value = value_in.contiguous(), loc = loc_in.contiguous(), attn = attn_in.contiguous();
  const at::Tensor shapes = shapes_in.contiguous(), starts = starts_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "det_ms_deform_attn_forward_cuda", [&] {
    forward_kernel<scalar_t><<<cuda::blocks_for(out.numel()), cuda::kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        value.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(), starts.data_ptr<int64_t>(), loc.data_ptr<scalar_t>(),
        attn.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), g);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& grad_in, const at::Tensor& value_in, const at::Tensor& shapes_in, const at::Tensor& starts_in,
    const at::Tensor& loc_in, const at::Tensor& attn_in) {
  check_inputs(value_in, shapes_in, starts_in, loc_in, attn_in);
  const c10::cuda::CUDAGuard guard(value_in.device());
  const Geometry g = geometry(value_in, loc_in);
  TORCH_CHECK(grad_in.dim() == 3 && grad_in.size(0) == g.B && grad_in.size(1) == g.Q &&
                  grad_in.size(2) == g.heads * g.C,
              "det ms_deform_attn_backward: grad must be (B, Q, heads * C), got ", grad_in.sizes());
  at::Tensor gvalue = at::zeros(value_in.sizes(), value_in.options());
  at::Tensor gloc = at::zeros(loc_in.sizes(), loc_in.options());
  at::Tensor gattn = at::zeros(attn_in.sizes(), attn_in.options());
  if (grad_in.numel() == 0 || g.N == 0 || g.L * g.P == 0) return {gvalue, gloc, gattn};
  const at::Tensor grad = grad_in.to(value_in.scalar_type()).contiguous();
  const at::Tensor value = value_in.contiguous(), loc = loc_in.contiguous(), attn = attn_in.contiguous();
  const at::Tensor shapes = shapes_in.contiguous(), starts = starts_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "det_ms_deform_attn_backward_cuda", [&] {
    backward_kernel<scalar_t><<<cuda::blocks_for(grad.numel()), cuda::kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        grad.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
        loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(), gvalue.data_ptr<scalar_t>(), gloc.data_ptr<scalar_t>(),
        gattn.data_ptr<scalar_t>(), g);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {gvalue, gloc, gattn};
}

}  // namespace

TORCH_LIBRARY_IMPL(det, CUDA, m) {
  m.impl("ms_deform_attn", &ms_deform_attn_forward_cuda);
  m.impl("ms_deform_attn_backward", &ms_deform_attn_backward_cuda);
}

}  // namespace det
