// IoU / IoF / GIoU between two box sets in one pass (no N x M temporaries), parallel over rows.
// Same operations as the vectorised torch path in det/ops/bbox_overlaps.py. `offset` is added to
// every width and height (1 for the legacy pixel convention of VOC's devkit, as mmcv's offset).
#include "common.h"

namespace det {
namespace {

enum Mode : int64_t { kIoU = 0, kIoF = 1, kGIoU = 2 };

template <typename T>
inline T overlap_one(const T* a, const T* b, T area_a, T area_b, int64_t mode, T eps, T off) {
  T w = std::min(a[2], b[2]) - std::max(a[0], b[0]) + off;
  T h = std::min(a[3], b[3]) - std::max(a[1], b[1]) + off;
  w = w > T(0) ? w : T(0);
  h = h > T(0) ? h : T(0);
  const T inter = w * h;
  T uni = mode == kIoF ? area_a : area_a + area_b - inter;
  uni = uni > eps ? uni : eps;
  const T iou = inter / uni;
  if (mode != kGIoU) return iou;
  T ew = std::max(a[2], b[2]) - std::min(a[0], b[0]) + off;
  T eh = std::max(a[3], b[3]) - std::min(a[1], b[1]) + off;
  ew = ew > T(0) ? ew : T(0);
  eh = eh > T(0) ? eh : T(0);
  T enclose = ew * eh;
  enclose = enclose > eps ? enclose : eps;
  return iou - (enclose - uni) / enclose;
}

at::Tensor bbox_overlaps_cpu(const at::Tensor& b1_in, const at::Tensor& b2_in, int64_t mode, bool aligned,
                             double eps, double offset) {
  TORCH_CHECK(b1_in.dim() == 2 && b1_in.size(1) == 4 && b2_in.dim() == 2 && b2_in.size(1) == 4,
              "det bbox_overlaps: boxes must be (N, 4) and (M, 4)");
  TORCH_CHECK(b1_in.scalar_type() == b2_in.scalar_type(), "det bbox_overlaps: dtypes differ");
  TORCH_CHECK(mode >= 0 && mode <= 2, "det bbox_overlaps: mode must be 0, 1 or 2");
  TORCH_CHECK(!aligned || b1_in.size(0) == b2_in.size(0), "det bbox_overlaps: aligned needs N == M");
  const int64_t n = b1_in.size(0), m = b2_in.size(0);
  at::Tensor b1 = b1_in.contiguous(), b2 = b2_in.contiguous();
  at::Tensor out = aligned ? at::empty({n}, b1.options()) : at::empty({n, m}, b1.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(b1.scalar_type(), "det_bbox_overlaps", [&] {
    using T = scalar_t;
    const T* p1 = b1.data_ptr<T>();
    const T* p2 = b2.data_ptr<T>();
    T* o = out.data_ptr<T>();
    const T e = static_cast<T>(eps);
    const T off = static_cast<T>(offset);
    std::vector<T> area2(m);
    for (int64_t j = 0; j < m; ++j) area2[j] = (p2[4 * j + 2] - p2[4 * j] + off) * (p2[4 * j + 3] - p2[4 * j + 1] + off);
    const int64_t grain = aligned ? 4096 : std::max<int64_t>(1, 65536 / std::max<int64_t>(m, 1));
    at::parallel_for(0, n, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const T* a = p1 + 4 * i;
        const T area_a = (a[2] - a[0] + off) * (a[3] - a[1] + off);
        if (aligned) {
          o[i] = overlap_one(a, p2 + 4 * i, area_a, area2[i], mode, e, off);
        } else {
          T* row = o + i * m;
          for (int64_t j = 0; j < m; ++j) row[j] = overlap_one(a, p2 + 4 * j, area_a, area2[j], mode, e, off);
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def("bbox_overlaps(Tensor boxes1, Tensor boxes2, int mode, bool aligned, float eps, float offset) -> Tensor");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("bbox_overlaps", &bbox_overlaps_cpu);
}

}  // namespace det
