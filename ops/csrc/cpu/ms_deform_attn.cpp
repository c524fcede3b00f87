// Multi-scale deformable attention (Deformable DETR / DINO) forward and backward on CPU.
//
// mmcv's conventions: value (B, N, heads, C) holds every level's map flattened row-major,
// level l starting at level_start_index[l] with spatial_shapes[l] = (H, W); sampling locations
// (B, Q, heads, L, P, 2) are (x, y) in [0, 1] of the map (grid_sample's align_corners=False
// pixel centres, zeros outside); output (B, Q, heads * C).
// Each sample is a bilinear read of four C-vectors of `value` (contiguous), so the inner loops run
// over channels. Forward: threads take (batch, query, head) triples, each writing its own output
// slice. Backward: the value gradient is a scatter, so threads take (batch, head) pairs (disjoint
// value slices) and loop over queries; location and attention gradients are per sample.
#include "common.h"

#include <tuple>

namespace det {
namespace {

struct Geometry {
  int64_t B, N, heads, C, Q, L, P;
};

// Bilinear corners of one sample: offsets (in value rows) and weights; weight 0 for a corner
// outside the map. Returns false when the sample lies wholly outside (mmcv's bounds test).
template <typename T>
struct Corners {
  int64_t row[4];
  T w[4];
  bool valid[4];
  T lh, lw, hh, hw;

  bool compute(T x, T y, int64_t H, int64_t W, int64_t start) {
    const T h_im = y * static_cast<T>(H) - T(0.5);
    const T w_im = x * static_cast<T>(W) - T(0.5);
    if (!(h_im > T(-1) && w_im > T(-1) && h_im < static_cast<T>(H) && w_im < static_cast<T>(W))) return false;
    const int64_t h_low = static_cast<int64_t>(std::floor(h_im)), w_low = static_cast<int64_t>(std::floor(w_im));
    lh = h_im - static_cast<T>(h_low);
    lw = w_im - static_cast<T>(w_low);
    hh = T(1) - lh;
    hw = T(1) - lw;
    const int64_t hs[4] = {h_low, h_low, h_low + 1, h_low + 1};
    const int64_t ws[4] = {w_low, w_low + 1, w_low, w_low + 1};
    const T ws_[4] = {hh * hw, hh * lw, lh * hw, lh * lw};
    for (int i = 0; i < 4; ++i) {
      valid[i] = hs[i] >= 0 && hs[i] < H && ws[i] >= 0 && ws[i] < W;
      row[i] = start + hs[i] * W + ws[i];
      w[i] = valid[i] ? ws_[i] : T(0);
    }
    return true;
  }
};

void check_inputs(const at::Tensor& value, const at::Tensor& shapes, const at::Tensor& starts, const at::Tensor& loc,
                  const at::Tensor& attn) {
  TORCH_CHECK(value.device().is_cpu() && loc.device().is_cpu() && attn.device().is_cpu() && shapes.device().is_cpu() &&
                  starts.device().is_cpu(),
              "det ms_deform_attn: CPU tensors expected");
  TORCH_CHECK(value.scalar_type() == at::kFloat || value.scalar_type() == at::kDouble,
              "det ms_deform_attn: float32 or float64 expected, got ", value.scalar_type());
  TORCH_CHECK(loc.scalar_type() == value.scalar_type() && attn.scalar_type() == value.scalar_type(),
              "det ms_deform_attn: value, sampling_locations and attention_weights dtypes differ");
  TORCH_CHECK(shapes.scalar_type() == at::kLong && starts.scalar_type() == at::kLong,
              "det ms_deform_attn: spatial_shapes and level_start_index must be int64");
  TORCH_CHECK(value.dim() == 4, "det ms_deform_attn: value must be (B, N, heads, C), got ", value.sizes());
  TORCH_CHECK(loc.dim() == 6 && loc.size(5) == 2, "det ms_deform_attn: sampling_locations must be (B, Q, heads, L, P, 2), got ",
              loc.sizes());
  const int64_t L = loc.size(3);
  TORCH_CHECK(shapes.dim() == 2 && shapes.size(0) == L && shapes.size(1) == 2,
              "det ms_deform_attn: spatial_shapes must be (L, 2) with L = ", L, ", got ", shapes.sizes());
  TORCH_CHECK(starts.dim() == 1 && starts.size(0) == L, "det ms_deform_attn: level_start_index must be (L,), got ",
              starts.sizes());
  TORCH_CHECK(loc.size(0) == value.size(0) && loc.size(2) == value.size(2),
              "det ms_deform_attn: batch/heads of sampling_locations ", loc.sizes(), " and value ", value.sizes(), " differ");
  TORCH_CHECK(attn.dim() == 5 && attn.size(0) == loc.size(0) && attn.size(1) == loc.size(1) && attn.size(2) == loc.size(2) &&
                  attn.size(3) == L && attn.size(4) == loc.size(4),
              "det ms_deform_attn: attention_weights must be (B, Q, heads, L, P), got ", attn.sizes());
  const int64_t* s = shapes.data_ptr<int64_t>();
  const int64_t* st = starts.data_ptr<int64_t>();
  for (int64_t l = 0; l < L; ++l) {
    TORCH_CHECK(s[2 * l] >= 0 && s[2 * l + 1] >= 0 && st[l] >= 0 && st[l] + s[2 * l] * s[2 * l + 1] <= value.size(1),
                "det ms_deform_attn: level ", l, " (", s[2 * l], "x", s[2 * l + 1], " from row ", st[l],
                ") does not fit in value's ", value.size(1), " rows");
  }
}

Geometry geometry(const at::Tensor& value, const at::Tensor& loc) {
  return Geometry{value.size(0), value.size(1), value.size(2), value.size(3), loc.size(1), loc.size(3), loc.size(4)};
}

template <typename T>
void forward_kernel(const T* value, const int64_t* shapes, const int64_t* starts, const T* loc, const T* attn, T* out,
                    const Geometry& g) {
  const int64_t row_stride = g.heads * g.C, samples = g.L * g.P;
  at::parallel_for(0, g.B * g.Q * g.heads, 64, [&](int64_t t0, int64_t t1) {
    Corners<T> c;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t h = t % g.heads, b = t / (g.heads * g.Q);
      const T* v = value + b * g.N * row_stride + h * g.C;
      const T* lt = loc + t * samples * 2;
      const T* at_ = attn + t * samples;
      T* o = out + t * g.C;
      for (int64_t l = 0; l < g.L; ++l) {
        const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
        for (int64_t p = 0; p < g.P; ++p) {
          const int64_t k = l * g.P + p;
          if (!c.compute(lt[2 * k], lt[2 * k + 1], H, W, starts[l])) continue;
          for (int i = 0; i < 4; ++i) {
            if (!c.valid[i]) continue;
            const T w = c.w[i] * at_[k];
            const T* src = v + c.row[i] * row_stride;
            for (int64_t ch = 0; ch < g.C; ++ch) o[ch] += w * src[ch];
          }
        }
      }
    }
  });
}

template <typename T>
void backward_kernel(const T* grad, const T* value, const int64_t* shapes, const int64_t* starts, const T* loc,
                     const T* attn, T* gvalue, T* gloc, T* gattn, const Geometry& g) {
  const int64_t row_stride = g.heads * g.C, samples = g.L * g.P;
  at::parallel_for(0, g.B * g.heads, 1, [&](int64_t t0, int64_t t1) {
    Corners<T> c;
    for (int64_t bh = t0; bh < t1; ++bh) {
      const int64_t b = bh / g.heads, h = bh % g.heads;
      const int64_t base = b * g.N * row_stride + h * g.C;
      for (int64_t q = 0; q < g.Q; ++q) {
        const int64_t t = (b * g.Q + q) * g.heads + h;
        const T* go = grad + t * g.C;
        for (int64_t l = 0; l < g.L; ++l) {
          const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
          for (int64_t p = 0; p < g.P; ++p) {
            const int64_t k = t * samples + l * g.P + p;
            if (!c.compute(loc[2 * k], loc[2 * k + 1], H, W, starts[l])) continue;
            const T a = attn[k];
            T dot[4] = {T(0), T(0), T(0), T(0)};  // <grad, corner value>
            for (int i = 0; i < 4; ++i) {
              if (!c.valid[i]) continue;
              const T* src = value + base + c.row[i] * row_stride;
              T* dst = gvalue + base + c.row[i] * row_stride;
              const T w = c.w[i] * a;
              T acc = T(0);
              for (int64_t ch = 0; ch < g.C; ++ch) {
                acc += go[ch] * src[ch];
                dst[ch] += w * go[ch];
              }
              dot[i] = acc;
            }
            gattn[k] = c.w[0] * dot[0] + c.w[1] * dot[1] + c.w[2] * dot[2] + c.w[3] * dot[3];
            // d(sample)/d(lw) and d(sample)/d(lh) of the bilinear form, chained through
            // w_im = x * W - 0.5 and h_im = y * H - 0.5.
            const T d_lw = c.hh * (dot[1] - dot[0]) + c.lh * (dot[3] - dot[2]);
            const T d_lh = c.hw * (dot[2] - dot[0]) + c.lw * (dot[3] - dot[1]);
            gloc[2 * k] = a * d_lw * static_cast<T>(W);
            gloc[2 * k + 1] = a * d_lh * static_cast<T>(H);
          }
        }
      }
    }
  });
}

at::Tensor ms_deform_attn_forward_cpu(const at::Tensor& value_in, const at::Tensor& shapes_in,
                                      const at::Tensor& starts_in, const at::Tensor& loc_in, const at::Tensor& attn_in) {
  const at::Tensor shapes = shapes_in.contiguous(), starts = starts_in.contiguous();
  check_inputs(value_in, shapes, starts, loc_in, attn_in);
  const Geometry g = geometry(value_in, loc_in);
  at::Tensor out = at::zeros({g.B, g.Q, g.heads * g.C}, value_in.options());
  if (out.numel() == 0 || g.N == 0) return out;
  const at::Tensor value = value_in.contiguous(), loc = loc_in.contiguous(), attn = attn_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "det_ms_deform_attn_forward", [&] {
    forward_kernel(value.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
                   loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), g);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor& grad_in, const at::Tensor& value_in, const at::Tensor& shapes_in, const at::Tensor& starts_in,
    const at::Tensor& loc_in, const at::Tensor& attn_in) {
  const at::Tensor shapes = shapes_in.contiguous(), starts = starts_in.contiguous();
  check_inputs(value_in, shapes, starts, loc_in, attn_in);
  const Geometry g = geometry(value_in, loc_in);
  TORCH_CHECK(grad_in.dim() == 3 && grad_in.size(0) == g.B && grad_in.size(1) == g.Q && grad_in.size(2) == g.heads * g.C,
              "det ms_deform_attn_backward: grad must be (B, Q, heads * C), got ", grad_in.sizes());
  at::Tensor gvalue = at::zeros(value_in.sizes(), value_in.options());
  at::Tensor gloc = at::zeros(loc_in.sizes(), loc_in.options());
  at::Tensor gattn = at::zeros(attn_in.sizes(), attn_in.options());
  if (grad_in.numel() == 0 || g.N == 0 || g.L * g.P == 0) return {gvalue, gloc, gattn};
  const at::Tensor grad = grad_in.to(value_in.scalar_type()).contiguous();
  const at::Tensor value = value_in.contiguous(), loc = loc_in.contiguous(), attn = attn_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "det_ms_deform_attn_backward", [&] {
    backward_kernel(grad.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(),
                    starts.data_ptr<int64_t>(), loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(),
                    gvalue.data_ptr<scalar_t>(), gloc.data_ptr<scalar_t>(), gattn.data_ptr<scalar_t>(), g);
  });
  return {gvalue, gloc, gattn};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def(
      "ms_deform_attn(Tensor value, Tensor spatial_shapes, Tensor level_start_index, Tensor sampling_locations, "
      "Tensor attention_weights) -> Tensor");
  m.def(
      "ms_deform_attn_backward(Tensor grad_output, Tensor value, Tensor spatial_shapes, Tensor level_start_index, "
      "Tensor sampling_locations, Tensor attention_weights) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("ms_deform_attn", &ms_deform_attn_forward_cpu);
  m.impl("ms_deform_attn_backward", &ms_deform_attn_backward_cpu);
}

}  // namespace det
