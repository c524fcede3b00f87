// RoIAlign forward and backward on CPU, parallel over RoIs and channels.
//
// Sampling positions and bilinear weights are those of torchvision's kernel. Two paths:
// - direct (NCHW, few RoIs): every output / input gradient is accumulated in torchvision's
//   order; threads take RoI x channel blocks forward and disjoint channel blocks backward.
// - channels-last (many RoIs): bilinear sampling is separable, so the samples of one bin
//   reduce to per-row and per-column weights and the bin to W_rows^T F W_cols, evaluated on
//   contiguous channel vectors (vectorised). This changes the summation order only.
#include "common.h"

#include <vector>

namespace det {
namespace {

constexpr int64_t kChannelBlock = 16;

template <typename T>
struct Sample {
  int64_t p1, p2, p3, p4;
  T w1, w2, w3, w4;
};

struct RoiGeometry {
  int64_t batch;
  int64_t grid_h, grid_w;
  double count;
};

// Bilinear sample positions/weights of every bin of one RoI (torchvision's conventions).
template <typename T>
RoiGeometry precalc(const T* roi, int64_t height, int64_t width, int64_t ph_n, int64_t pw_n,
                    double spatial_scale, int64_t sampling_ratio, bool aligned,
                    std::vector<Sample<T>>& samples) {
  RoiGeometry g;
  g.batch = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? T(0.5) : T(0);
  const T start_w = roi[1] * static_cast<T>(spatial_scale) - offset;
  const T start_h = roi[2] * static_cast<T>(spatial_scale) - offset;
  const T end_w = roi[3] * static_cast<T>(spatial_scale) - offset;
  const T end_h = roi[4] * static_cast<T>(spatial_scale) - offset;
  T roi_w = end_w - start_w;
  T roi_h = end_h - start_h;
  if (!aligned) {
    roi_w = std::max(roi_w, T(1));
    roi_h = std::max(roi_h, T(1));
  }
  const T bin_h = roi_h / static_cast<T>(ph_n);
  const T bin_w = roi_w / static_cast<T>(pw_n);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_h / ph_n));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_w / pw_n));
  g.count = static_cast<double>(std::max<int64_t>(g.grid_h * g.grid_w, 1));
  samples.resize(ph_n * pw_n * g.grid_h * g.grid_w);
  int64_t k = 0;
  for (int64_t ph = 0; ph < ph_n; ++ph) {
    for (int64_t pw = 0; pw < pw_n; ++pw) {
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        T y = start_h + ph * bin_h + static_cast<T>(iy + T(0.5)) * bin_h / static_cast<T>(g.grid_h);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          T x = start_w + pw * bin_w + static_cast<T>(ix + T(0.5)) * bin_w / static_cast<T>(g.grid_w);
          Sample<T>& s = samples[k++];
          if (y < T(-1) || y > static_cast<T>(height) || x < T(-1) || x > static_cast<T>(width)) {
            s = Sample<T>{0, 0, 0, 0, T(0), T(0), T(0), T(0)};
            continue;
          }
          T yy = y <= T(0) ? T(0) : y;
          T xx = x <= T(0) ? T(0) : x;
          int64_t y_low = static_cast<int64_t>(yy), x_low = static_cast<int64_t>(xx);
          int64_t y_high, x_high;
          if (y_low >= height - 1) {
            y_high = y_low = height - 1;
            yy = static_cast<T>(y_low);
          } else {
            y_high = y_low + 1;
          }
          if (x_low >= width - 1) {
            x_high = x_low = width - 1;
            xx = static_cast<T>(x_low);
          } else {
            x_high = x_low + 1;
          }
          const T ly = yy - y_low, lx = xx - x_low;
          const T hy = T(1) - ly, hx = T(1) - lx;
          s = Sample<T>{y_low * width + x_low, y_low * width + x_high, y_high * width + x_low,
                        y_high * width + x_high, hy * hx, hy * lx, ly * hx, ly * lx};
        }
      }
    }
  }
  return g;
}

void check_rois(const at::Tensor& input, const at::Tensor& rois) {
  TORCH_CHECK(input.device().is_cpu() && rois.device().is_cpu(), "det roi_align: CPU tensors expected");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "det roi_align: rois must be (K, 5), got ", rois.sizes());
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), "det roi_align: input and rois dtypes differ");
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "det roi_align: float32 or float64 expected, got ", input.scalar_type());
}

template <typename T>
void check_batch_indices(const T* rois, int64_t k, int64_t batch) {
  for (int64_t r = 0; r < k; ++r) {
    const T b = rois[5 * r];
    TORCH_CHECK(b >= T(0) && static_cast<int64_t>(b) < batch, "det roi_align: roi ", r,
                " has batch index ", static_cast<double>(b), " outside [0, ", batch, ")");
  }
}

// Samples of one bin along one axis, merged into (index, weight) pairs (torchvision's clamping).
template <typename T>
void axis_weights(T start, T bin, int64_t p, int64_t grid, int64_t size, std::vector<std::pair<int64_t, T>>& out) {
  out.clear();
  for (int64_t i = 0; i < grid; ++i) {
    T v = start + p * bin + static_cast<T>(i + T(0.5)) * bin / static_cast<T>(grid);
    if (v < T(-1) || v > static_cast<T>(size)) continue;
    if (v <= T(0)) v = T(0);
    int64_t low = static_cast<int64_t>(v), high;
    if (low >= size - 1) {
      high = low = size - 1;
      v = static_cast<T>(low);
    } else {
      high = low + 1;
    }
    const T l = v - low, h = T(1) - l;
    for (auto [idx, w] : {std::pair<int64_t, T>{low, h}, std::pair<int64_t, T>{high, l}}) {
      if (!out.empty() && out.back().first == idx) out.back().second += w;
      else out.push_back({idx, w});
    }
  }
}

// Per-bin row and column weights of one RoI.
template <typename T>
struct SeparableRoi {
  int64_t batch = 0;
  T count = T(1);
  std::vector<std::vector<std::pair<int64_t, T>>> rows, cols;

  void compute(const T* roi, int64_t height, int64_t width, int64_t ph_n, int64_t pw_n, double spatial_scale,
               int64_t sampling_ratio, bool aligned) {
    batch = static_cast<int64_t>(roi[0]);
    const T offset = aligned ? T(0.5) : T(0);
    const T start_w = roi[1] * static_cast<T>(spatial_scale) - offset;
    const T start_h = roi[2] * static_cast<T>(spatial_scale) - offset;
    T roi_w = roi[3] * static_cast<T>(spatial_scale) - offset - start_w;
    T roi_h = roi[4] * static_cast<T>(spatial_scale) - offset - start_h;
    if (!aligned) {
      roi_w = std::max(roi_w, T(1));
      roi_h = std::max(roi_h, T(1));
    }
    const T bin_h = roi_h / static_cast<T>(ph_n), bin_w = roi_w / static_cast<T>(pw_n);
    const int64_t gh = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_h / ph_n));
    const int64_t gw = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_w / pw_n));
    count = static_cast<T>(std::max<int64_t>(gh * gw, 1));
    rows.resize(ph_n);
    cols.resize(pw_n);
    for (int64_t p = 0; p < ph_n; ++p) axis_weights(start_h, bin_h, p, gh, height, rows[p]);
    for (int64_t p = 0; p < pw_n; ++p) axis_weights(start_w, bin_w, p, gw, width, cols[p]);
  }
};

template <typename T>
void roi_align_forward_nhwc(const T* xt, const T* r, T* out, int64_t K, int64_t C, int64_t H, int64_t W,
                            int64_t ph_n, int64_t pw_n, double spatial_scale, int64_t sampling_ratio, bool aligned) {
  const int64_t bins = ph_n * pw_n;
  at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
    std::vector<T> acc(C), tmp(C);
    SeparableRoi<T> roi;
    for (int64_t k = k0; k < k1; ++k) {
      roi.compute(r + 5 * k, H, W, ph_n, pw_n, spatial_scale, sampling_ratio, aligned);
      const T* image = xt + roi.batch * H * W * C;
      for (int64_t ph = 0; ph < ph_n; ++ph) {
        for (int64_t pw = 0; pw < pw_n; ++pw) {
          std::fill(acc.begin(), acc.end(), T(0));
          for (auto [row, wr] : roi.rows[ph]) {
            std::fill(tmp.begin(), tmp.end(), T(0));
            for (auto [col, wc] : roi.cols[pw]) {
              const T* f = image + (row * W + col) * C;
              T* t = tmp.data();
              for (int64_t ch = 0; ch < C; ++ch) t[ch] += wc * f[ch];
            }
            T* a = acc.data();
            const T* t = tmp.data();
            for (int64_t ch = 0; ch < C; ++ch) a[ch] += wr * t[ch];
          }
          T* o = out + k * C * bins + ph * pw_n + pw;
          for (int64_t ch = 0; ch < C; ++ch) o[ch * bins] = acc[ch] / roi.count;
        }
      }
    }
  });
}

template <typename T>
void roi_align_backward_nhwc(const T* go, const T* r, T* gi, int64_t K, int64_t C, int64_t H, int64_t W,
                             int64_t ph_n, int64_t pw_n, double spatial_scale, int64_t sampling_ratio,
                             bool aligned) {
  const int64_t bins = ph_n * pw_n;
  std::vector<SeparableRoi<T>> rois(K);
  at::parallel_for(0, K, 16, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      rois[k].compute(r + 5 * k, H, W, ph_n, pw_n, spatial_scale, sampling_ratio, aligned);
    }
  });
  const int64_t block = 32;
  const int64_t blocks = (C + block - 1) / block;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> g(block);
    for (int64_t cb = b0; cb < b1; ++cb) {
      const int64_t c0 = cb * block, cn = std::min(C, c0 + block) - c0;
      for (int64_t k = 0; k < K; ++k) {
        const SeparableRoi<T>& roi = rois[k];
        T* image = gi + roi.batch * H * W * C + c0;
        for (int64_t ph = 0; ph < ph_n; ++ph) {
          for (int64_t pw = 0; pw < pw_n; ++pw) {
            const T* src = go + (k * C + c0) * bins + ph * pw_n + pw;
            for (int64_t ch = 0; ch < cn; ++ch) g[ch] = src[ch * bins] / roi.count;
            for (auto [row, wr] : roi.rows[ph]) {
              for (auto [col, wc] : roi.cols[pw]) {
                const T w = wr * wc;
                T* d = image + (row * W + col) * C;
                for (int64_t ch = 0; ch < cn; ++ch) d[ch] += w * g[ch];
              }
            }
          }
        }
      }
    }
  });
}

// Bilinear samples all RoIs take (bins x grid), the work of the direct kernel.
template <typename T>
int64_t total_samples(const T* rois, int64_t K, int64_t ph_n, int64_t pw_n, double spatial_scale,
                      int64_t sampling_ratio, bool aligned) {
  if (sampling_ratio > 0) return K * ph_n * pw_n * sampling_ratio * sampling_ratio;
  int64_t total = 0;
  for (int64_t k = 0; k < K; ++k) {
    const T* r = rois + 5 * k;
    T roi_w = (r[3] - r[1]) * static_cast<T>(spatial_scale);
    T roi_h = (r[4] - r[2]) * static_cast<T>(spatial_scale);
    if (!aligned) {
      roi_w = std::max(roi_w, T(1));
      roi_h = std::max(roi_h, T(1));
    }
    const double gh = std::ceil(static_cast<double>(roi_h) / ph_n), gw = std::ceil(static_cast<double>(roi_w) / pw_n);
    if (gh > 0 && gw > 0) total += static_cast<int64_t>(std::min(gh * gw, 1e12)) * ph_n * pw_n;
  }
  return total;
}

// Channels-last pays a transpose of the feature map (and of the gradient); worth it once the
// RoIs take at least as many samples as the map has positions.
bool use_nhwc(const at::Tensor& rois, int64_t K, int64_t maps, int64_t H, int64_t W, int64_t ph_n,
              int64_t pw_n, double spatial_scale, int64_t sampling_ratio, bool aligned) {
  int64_t samples = 0;
  AT_DISPATCH_FLOATING_TYPES(rois.scalar_type(), "det_roi_align_samples", [&] {
    samples = total_samples(rois.data_ptr<scalar_t>(), K, ph_n, pw_n, spatial_scale, sampling_ratio, aligned);
  });
  return samples >= maps * H * W;
}

at::Tensor roi_align_forward_cpu(const at::Tensor& input_in, const at::Tensor& rois_in, double spatial_scale,
                                 int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                                 bool aligned) {
  check_rois(input_in, rois_in);
  TORCH_CHECK(input_in.dim() == 4, "det roi_align: input must be (B, C, H, W), got ", input_in.sizes());
  const int64_t K = rois_in.size(0), C = input_in.size(1), H = input_in.size(2), W = input_in.size(3);
  at::Tensor output = at::zeros({K, C, pooled_height, pooled_width}, input_in.options());
  if (K == 0 || C == 0 || output.numel() == 0) return output;
  at::Tensor rois = rois_in.contiguous();
  const bool channels_last = input_in.is_contiguous(at::MemoryFormat::ChannelsLast) && !input_in.is_contiguous();
  if (channels_last || use_nhwc(rois, K, input_in.size(0), H, W, pooled_height, pooled_width, spatial_scale,
                                sampling_ratio, aligned)) {
    at::Tensor xt = input_in.permute({0, 2, 3, 1}).contiguous();
    AT_DISPATCH_FLOATING_TYPES(xt.scalar_type(), "det_roi_align_forward_nhwc", [&] {
      check_batch_indices(rois.data_ptr<scalar_t>(), K, input_in.size(0));
      roi_align_forward_nhwc(xt.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), K,
                             C, H, W, pooled_height, pooled_width, spatial_scale, sampling_ratio, aligned);
    });
    return output;
  }
  at::Tensor input = input_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "det_roi_align_forward", [&] {
    using T = scalar_t;
    const T* x = input.data_ptr<T>();
    const T* r = rois.data_ptr<T>();
    T* out = output.data_ptr<T>();
    check_batch_indices(r, K, input.size(0));
    const int64_t cblocks = (C + kChannelBlock - 1) / kChannelBlock;
    const int64_t bins = pooled_height * pooled_width;
    at::parallel_for(0, K * cblocks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<Sample<T>> samples;
      int64_t cached_roi = -1;
      RoiGeometry g{};
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t k = t / cblocks, cb = t % cblocks;
        if (k != cached_roi) {
          g = precalc(r + 5 * k, H, W, pooled_height, pooled_width, spatial_scale, sampling_ratio, aligned,
                      samples);
          cached_roi = k;
        }
        const int64_t per_bin = g.grid_h * g.grid_w;
        const T count = static_cast<T>(g.count);
        const int64_t c1 = std::min(C, (cb + 1) * kChannelBlock);
        for (int64_t c = cb * kChannelBlock; c < c1; ++c) {
          const T* plane = x + (g.batch * C + c) * H * W;
          T* o = out + (k * C + c) * bins;
          for (int64_t b = 0; b < bins; ++b) {
            const Sample<T>* s = samples.data() + b * per_bin;
            T acc = T(0);
            for (int64_t i = 0; i < per_bin; ++i) {
              acc += s[i].w1 * plane[s[i].p1] + s[i].w2 * plane[s[i].p2] + s[i].w3 * plane[s[i].p3] +
                     s[i].w4 * plane[s[i].p4];
            }
            o[b] = acc / count;
          }
        }
      }
    });
  });
  return output;
}

at::Tensor roi_align_backward_cpu(const at::Tensor& grad_in, const at::Tensor& rois_in, double spatial_scale,
                                  int64_t pooled_height, int64_t pooled_width, int64_t batch_size,
                                  int64_t channels, int64_t height, int64_t width, int64_t sampling_ratio,
                                  bool aligned) {
  check_rois(grad_in, rois_in);
  const int64_t K = rois_in.size(0), C = channels, H = height, W = width;
  TORCH_CHECK(grad_in.dim() == 4 && grad_in.size(0) == K && grad_in.size(1) == C &&
                  grad_in.size(2) == pooled_height && grad_in.size(3) == pooled_width,
              "det roi_align_backward: grad must be (K, C, ph, pw), got ", grad_in.sizes());
  if (K == 0 || batch_size * C * H * W == 0) return at::zeros({batch_size, C, H, W}, grad_in.options());
  at::Tensor grad = grad_in.contiguous(), rois = rois_in.contiguous();
  if (use_nhwc(rois, K, batch_size, H, W, pooled_height, pooled_width, spatial_scale, sampling_ratio, aligned)) {
    at::Tensor gt = at::zeros({batch_size, H, W, C}, grad_in.options());
    AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "det_roi_align_backward_nhwc", [&] {
      check_batch_indices(rois.data_ptr<scalar_t>(), K, batch_size);
      roi_align_backward_nhwc(grad.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), gt.data_ptr<scalar_t>(), K, C,
                              H, W, pooled_height, pooled_width, spatial_scale, sampling_ratio, aligned);
    });
    return gt.permute({0, 3, 1, 2}).contiguous();
  }
  at::Tensor grad_input = at::zeros({batch_size, C, H, W}, grad_in.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "det_roi_align_backward", [&] {
    using T = scalar_t;
    const T* go = grad.data_ptr<T>();
    const T* r = rois.data_ptr<T>();
    T* gi = grad_input.data_ptr<T>();
    check_batch_indices(r, K, batch_size);
    const int64_t bins = pooled_height * pooled_width;
    // Geometry of every RoI once (shared read-only by the channel-parallel loop).
    std::vector<std::vector<Sample<T>>> all(K);
    std::vector<RoiGeometry> geo(K);
    at::parallel_for(0, K, 16, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        geo[k] = precalc(r + 5 * k, H, W, pooled_height, pooled_width, spatial_scale, sampling_ratio, aligned,
                         all[k]);
      }
    });
    at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t k = 0; k < K; ++k) {
          const RoiGeometry& g = geo[k];
          const int64_t per_bin = g.grid_h * g.grid_w;
          const T count = static_cast<T>(g.count);
          T* plane = gi + (g.batch * C + c) * H * W;
          const T* gk = go + (k * C + c) * bins;
          const Sample<T>* s = all[k].data();
          for (int64_t b = 0; b < bins; ++b) {
            const T gb = gk[b];
            for (int64_t i = 0; i < per_bin; ++i, ++s) {
              plane[s->p1] += gb * s->w1 / count;
              plane[s->p2] += gb * s->w2 / count;
              plane[s->p3] += gb * s->w3 / count;
              plane[s->p4] += gb * s->w4 / count;
            }
          }
        }
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def(
      "roi_align(Tensor input, Tensor rois, float spatial_scale, int pooled_height, int pooled_width, "
      "int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, int pooled_height, "
      "int pooled_width, int batch_size, int channels, int height, int width, int sampling_ratio, "
      "bool aligned) -> Tensor");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("roi_align", &roi_align_forward_cpu);
  m.impl("roi_align_backward", &roi_align_backward_cpu);
}

}  // namespace det
