// Sigmoid focal loss on CUDA: the same one-pass loss + gradient as ops/csrc/cpu/focal_loss.cpp.
// Elementwise kernel; 'mean'/'sum' reduce the per-element losses with ATen's sum (float64
// accumulation for float32 inputs, as the CPU kernel does).
#include "common_cuda.cuh"

#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>

#include <tuple>

namespace det {
namespace {

template <typename T>
__global__ void focal_kernel(const T* __restrict__ x, const T* __restrict__ t, const T* __restrict__ w,
                             int64_t weight_stride, int64_t n, T alpha, T gamma, bool use_alpha, T scale,
                             T* __restrict__ loss, T* __restrict__ grad) {
  DET_CUDA_LOOP(i, n) {
    const T xi = x[i], ti = t[i];
    const T e = exp(-fabs(xi));
    const T ce = (xi > T(0) ? xi : T(0)) - xi * ti + log1p(e);
    const T p = xi >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    const T m = T(1) - (p * ti + (T(1) - p) * (T(1) - ti));
    T mod, dmod;
    const T dm = (T(1) - T(2) * ti) * p * (T(1) - p);
    if (gamma == T(2)) { mod = m * m; dmod = T(2) * m * dm; }
    else if (gamma == T(0)) { mod = T(1); dmod = T(0); }
    else if (gamma == T(1)) { mod = m; dmod = dm; }
    else { mod = pow(m, gamma); dmod = m > T(0) ? gamma * pow(m, gamma - T(1)) * dm : T(0); }
    const T at = use_alpha ? alpha * ti + (T(1) - alpha) * (T(1) - ti) : T(1);
    const T wi = w ? w[i / weight_stride] : T(1);
    loss[i] = at * ce * mod * wi;
    if (grad) grad[i] = at * ((p - ti) * mod + ce * dmod) * wi * scale;
  }
}

std::tuple<at::Tensor, at::Tensor> sigmoid_focal_loss_cuda(
    const at::Tensor& inputs_in, const at::Tensor& targets_in, const std::optional<at::Tensor>& weight_in,
    double alpha, double gamma, int64_t reduction, bool compute_grad) {
  TORCH_CHECK(inputs_in.is_cuda(), "det sigmoid_focal_loss: CUDA tensors expected");
  TORCH_CHECK(inputs_in.scalar_type() == at::kFloat || inputs_in.scalar_type() == at::kDouble,
              "det sigmoid_focal_loss: float32 or float64 inputs expected, got ", inputs_in.scalar_type());
  TORCH_CHECK(targets_in.sizes() == inputs_in.sizes(), "det sigmoid_focal_loss: targets ", targets_in.sizes(),
              " must have the shape of inputs ", inputs_in.sizes());
  TORCH_CHECK(reduction >= 0 && reduction <= 2, "det sigmoid_focal_loss: reduction must be 0, 1 or 2");
  TORCH_CHECK(gamma >= 0, "det sigmoid_focal_loss: gamma must be >= 0");
  const c10::cuda::CUDAGuard guard(inputs_in.device());
  const at::Tensor inputs = inputs_in.contiguous();
  const at::Tensor targets = targets_in.to(inputs.scalar_type()).contiguous();
  const int64_t n = inputs.numel();
  at::Tensor weight;
  int64_t weight_stride = 1;
  if (weight_in.has_value() && weight_in->defined()) {
    weight = weight_in->to(inputs.scalar_type()).contiguous();
    const int64_t wn = weight.numel();
    TORCH_CHECK(wn > 0 ? n % wn == 0 : n == 0, "det sigmoid_focal_loss: weight with ", wn,
                " values does not divide ", n, " inputs");
    weight_stride = wn > 0 ? n / wn : 1;
  }
  at::Tensor per_element = at::empty_like(inputs);
  at::Tensor grad = compute_grad ? at::empty_like(inputs) : at::empty({0}, inputs.options());
  if (n > 0) {
    AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "det_sigmoid_focal_loss_cuda", [&] {
      using T = scalar_t;
      const T scale = reduction == 1 ? T(1) / static_cast<T>(n) : T(1);
      focal_kernel<T><<<cuda::blocks_for(n), cuda::kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          inputs.data_ptr<T>(), targets.data_ptr<T>(), weight.defined() ? weight.data_ptr<T>() : nullptr,
          weight_stride, n, static_cast<T>(alpha), static_cast<T>(gamma), alpha >= 0, scale,
          per_element.data_ptr<T>(), compute_grad ? grad.data_ptr<T>() : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  if (reduction == 0) return {per_element, grad};
  at::Tensor total = at::sum(per_element, at::kDouble);
  if (reduction == 1) total = n > 0 ? total.div(static_cast<double>(n)) : total.mul(std::nan(""));
  return {total.to(inputs.scalar_type()), grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(det, CUDA, m) {
  m.impl("sigmoid_focal_loss", &sigmoid_focal_loss_cuda);
}

}  // namespace det
