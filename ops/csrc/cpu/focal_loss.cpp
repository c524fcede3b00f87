// Sigmoid focal loss (Lin et al., RetinaNet) with its gradient computed in the same pass.
//
// One pass over the logits yields the loss (per element, or summed) and d loss / d logits,
// which the autograd Function saves instead of torchvision's chain of intermediate tensors.
// Sums use fixed-size blocks added in a fixed order, so any thread count gives the same bits.
#include "common.h"

#include <vector>

namespace det {
namespace {

constexpr int64_t kBlock = 16384;

enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2 };

template <typename T>
struct FocalParams {
  T alpha;
  T gamma;
  bool use_alpha;
  bool need_grad;
};

// Loss and gradient of one element (x: logit, t: target in [0, 1]).
template <typename T>
inline void focal_element(T x, T t, const FocalParams<T>& f, T& loss, T& grad) {
  const T e = std::exp(-std::abs(x));
  const T ce = (x > T(0) ? x : T(0)) - x * t + std::log1p(e);
  const T p = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  const T m = T(1) - (p * t + (T(1) - p) * (T(1) - t));
  T mod;
  if (f.gamma == T(2)) mod = m * m;
  else if (f.gamma == T(0)) mod = T(1);
  else if (f.gamma == T(1)) mod = m;
  else mod = std::pow(m, f.gamma);
  const T at = f.use_alpha ? f.alpha * t + (T(1) - f.alpha) * (T(1) - t) : T(1);
  loss = at * ce * mod;
  if (f.need_grad) {
    const T dm = (T(1) - T(2) * t) * p * (T(1) - p);
    T dmod;
    if (f.gamma == T(2)) dmod = T(2) * m * dm;
    else if (f.gamma == T(0)) dmod = T(0);
    else if (f.gamma == T(1)) dmod = dm;
    else dmod = m > T(0) ? f.gamma * std::pow(m, f.gamma - T(1)) * dm : T(0);
    grad = at * ((p - t) * mod + ce * dmod);
  }
}

std::tuple<at::Tensor, at::Tensor> sigmoid_focal_loss_cpu(
    const at::Tensor& inputs_in, const at::Tensor& targets_in, const std::optional<at::Tensor>& weight_in,
    double alpha, double gamma, int64_t reduction, bool compute_grad) {
  TORCH_CHECK(inputs_in.device().is_cpu(), "det sigmoid_focal_loss: CPU tensors expected");
  TORCH_CHECK(inputs_in.scalar_type() == at::kFloat || inputs_in.scalar_type() == at::kDouble,
              "det sigmoid_focal_loss: float32 or float64 inputs expected, got ", inputs_in.scalar_type());
  TORCH_CHECK(targets_in.sizes() == inputs_in.sizes(), "det sigmoid_focal_loss: targets ",
              targets_in.sizes(), " must have the shape of inputs ", inputs_in.sizes());
  TORCH_CHECK(reduction >= 0 && reduction <= 2, "det sigmoid_focal_loss: reduction must be 0, 1 or 2");
  TORCH_CHECK(gamma >= 0, "det sigmoid_focal_loss: gamma must be >= 0");
  at::Tensor inputs = inputs_in.contiguous();
  at::Tensor targets = targets_in.to(inputs.scalar_type()).contiguous();
  const int64_t n = inputs.numel();
  at::Tensor weight;
  int64_t weight_stride = 0;  // elements per weight value: 1 (elementwise) or a row length
  if (weight_in.has_value() && weight_in->defined()) {
    weight = weight_in->to(inputs.scalar_type()).contiguous();
    const int64_t wn = weight.numel();
    TORCH_CHECK(wn > 0 ? n % wn == 0 : n == 0,
                "det sigmoid_focal_loss: weight with ", wn, " values does not divide ", n, " inputs");
    weight_stride = wn > 0 ? n / wn : 1;
  }
  at::Tensor loss = reduction == kNone ? at::empty_like(inputs) : at::empty({}, inputs.options());
  at::Tensor grad = compute_grad ? at::empty_like(inputs) : at::empty({0}, inputs.options());
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "det_sigmoid_focal_loss", [&] {
    using T = scalar_t;
    const FocalParams<T> f{static_cast<T>(alpha), static_cast<T>(gamma), alpha >= 0, compute_grad};
    const T* x = inputs.data_ptr<T>();
    const T* t = targets.data_ptr<T>();
    const T* w = weight.defined() ? weight.data_ptr<T>() : nullptr;
    T* g = compute_grad ? grad.data_ptr<T>() : nullptr;
    const T scale = reduction == kMean ? (n > 0 ? T(1) / static_cast<T>(n) : T(0)) : T(1);
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial(reduction == kNone ? 0 : blocks, 0.0);
    T* out = reduction == kNone ? loss.data_ptr<T>() : nullptr;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
        double acc = 0.0;
        for (int64_t i = i0; i < i1; ++i) {
          T l, gr = T(0);
          focal_element(x[i], t[i], f, l, gr);
          const T wi = w ? w[i / weight_stride] : T(1);
          if (out) out[i] = l * wi;
          else acc += static_cast<double>(l * wi);
          if (g) g[i] = gr * wi * scale;
        }
        if (!out) partial[b] = acc;
      }
    });
    if (!out) {
      double total = 0.0;
      for (double v : partial) total += v;
      if (reduction == kMean) total = n > 0 ? total / static_cast<double>(n) : std::nan("");
      loss.fill_(total);
    }
  });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def(
      "sigmoid_focal_loss(Tensor inputs, Tensor targets, Tensor? weight, float alpha, float gamma, "
      "int reduction, bool compute_grad) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("sigmoid_focal_loss", &sigmoid_focal_loss_cpu);
}

}  // namespace det
