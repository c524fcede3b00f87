// Greedy NMS (torchvision-identical keep set and order), class-aware NMS and Soft-NMS on CPU.
//
// Speed: boxes are sorted once and copied into contiguous per-coordinate arrays in score
// order. Large inputs use a uniform grid: a kept box only visits the boxes registered in the
// cells it covers (a pair is examined once, in the cell holding the top-left corner of its
// intersection), so the work follows the number of overlapping pairs instead of kept x N.
// Small inputs compact the surviving candidates after each kept box. Both paths compute each
// IoU with torchvision's operations in torchvision's order, so decisions are bit-identical.
// Class-aware NMS runs the classes in parallel.
#include "common.h"

#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

namespace det {
namespace {

constexpr int64_t kGridMin = 2048;  // boxes from which the grid path is used
constexpr int64_t kBigSpan = 64;    // boxes covering more cells are checked against every kept box

// IoU exactly as torchvision's CPU kernel computes it (same operations, same order).
template <typename T>
inline T iou_tv(T ix1, T iy1, T ix2, T iy2, T iarea, T x1, T y1, T x2, T y2, T area) {
  T xx1 = ix1 > x1 ? ix1 : x1;
  T yy1 = iy1 > y1 ? iy1 : y1;
  T xx2 = ix2 < x2 ? ix2 : x2;
  T yy2 = iy2 < y2 ? iy2 : y2;
  T w = xx2 - xx1;
  T h = yy2 - yy1;
  w = w > T(0) ? w : T(0);
  h = h > T(0) ? h : T(0);
  T inter = w * h;
  return inter / (iarea + area - inter);
}

// Candidates in score order: coordinates, areas and original indices, compacted in place.
template <typename T>
struct Candidates {
  std::vector<T> x1, y1, x2, y2, area;
  std::vector<int64_t> index;

  void fill(const T* boxes, const int64_t* order, int64_t n) {
    x1.resize(n); y1.resize(n); x2.resize(n); y2.resize(n); area.resize(n); index.resize(n);
    for (int64_t k = 0; k < n; ++k) {
      const T* b = boxes + 4 * order[k];
      x1[k] = b[0]; y1[k] = b[1]; x2[k] = b[2]; y2[k] = b[3];
      area[k] = (b[2] - b[0]) * (b[3] - b[1]);
      index[k] = order[k];
    }
  }

  // Number of candidates in [begin, end) whose IoU with candidate p exceeds tf.
  int64_t count_over(int64_t p, int64_t begin, int64_t end, T tf) const {
    const T ix1 = x1[p], iy1 = y1[p], ix2 = x2[p], iy2 = y2[p], ia = area[p];
    const T* X1 = x1.data(); const T* Y1 = y1.data(); const T* X2 = x2.data();
    const T* Y2 = y2.data(); const T* A = area.data();
    int64_t count = 0;
    for (int64_t r = begin; r < end; ++r) {
      count += iou_tv(ix1, iy1, ix2, iy2, ia, X1[r], Y1[r], X2[r], Y2[r], A[r]) > tf;
    }
    return count;
  }

  // Remove candidates in [begin, end) overlapping p by more than tf; returns the new end.
  int64_t compact(int64_t p, int64_t begin, int64_t end, T tf) {
    const T ix1 = x1[p], iy1 = y1[p], ix2 = x2[p], iy2 = y2[p], ia = area[p];
    int64_t w = begin;
    for (int64_t r = begin; r < end; ++r) {
      if (!(iou_tv(ix1, iy1, ix2, iy2, ia, x1[r], y1[r], x2[r], y2[r], area[r]) > tf)) {
        x1[w] = x1[r]; y1[w] = y1[r]; x2[w] = x2[r]; y2[w] = y2[r]; area[w] = area[r];
        index[w] = index[r];
        ++w;
      }
    }
    return w;
  }
};

// Brute-force greedy NMS over boxes listed in score order (`order`); appends kept indices.
template <typename T>
void nms_compact(const T* boxes, const int64_t* order, int64_t n, T tf, std::vector<int64_t>& keep) {
  Candidates<T> c;
  c.fill(boxes, order, n);
  int64_t end = n;
  for (int64_t p = 0; p < end; ++p) {
    keep.push_back(c.index[p]);
    const int64_t begin = p + 1;
    if (begin >= end) break;
    if (c.count_over(p, begin, end, tf) > 0) end = c.compact(p, begin, end, tf);
  }
}

// Grid-accelerated greedy NMS (same result as nms_compact when tf >= 0 and all coordinates
// are finite: a suppressing pair has an intersection of positive area).
template <typename T>
void nms_grid(const T* boxes, const int64_t* order, int64_t n, T tf, std::vector<int64_t>& keep) {
  Candidates<T> c;
  c.fill(boxes, order, n);
  double minx = INFINITY, miny = INFINITY, maxx = -INFINITY, maxy = -INFINITY, sum = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    minx = std::min<double>(minx, c.x1[k]); miny = std::min<double>(miny, c.y1[k]);
    maxx = std::max<double>(maxx, c.x2[k]); maxy = std::max<double>(maxy, c.y2[k]);
    sum += std::max<double>(0.0, std::max<double>(c.x2[k] - c.x1[k], c.y2[k] - c.y1[k]));
  }
  double cell = sum / static_cast<double>(n);
  const double extent = std::max(maxx - minx, maxy - miny);
  if (!(cell > 0) || !std::isfinite(cell)) cell = extent > 0 ? extent : 1.0;
  int64_t nx, ny;
  for (;;) {
    nx = static_cast<int64_t>((maxx - minx) / cell) + 1;
    ny = static_cast<int64_t>((maxy - miny) / cell) + 1;
    if (nx * ny <= 4 * n + 16) break;
    cell *= 2;
  }
  const double inv = 1.0 / cell;
  auto col = [&](double v) { return std::clamp<int64_t>(static_cast<int64_t>((v - minx) * inv), 0, nx - 1); };
  auto row = [&](double v) { return std::clamp<int64_t>(static_cast<int64_t>((v - miny) * inv), 0, ny - 1); };
  // Cells -> boxes (CSR, ranks ascending inside a cell); boxes spanning many cells go to `big`.
  // col()/row() are monotone, so the cell holding the top-left corner of the intersection of
  // boxes a and b is (max(c0[a], c0[b]), max(r0[a], r0[b])): an integer test picks the one cell
  // that examines a pair.
  std::vector<int32_t> c0(n), c1(n), r0(n), r1(n);
  std::vector<int64_t> start(nx * ny + 1, 0);
  std::vector<int32_t> big;
  for (int64_t k = 0; k < n; ++k) {
    c0[k] = static_cast<int32_t>(col(c.x1[k])); c1[k] = static_cast<int32_t>(col(c.x2[k]));
    r0[k] = static_cast<int32_t>(row(c.y1[k])); r1[k] = static_cast<int32_t>(row(c.y2[k]));
    if (static_cast<int64_t>(c1[k] - c0[k] + 1) * (r1[k] - r0[k] + 1) > kBigSpan) {
      big.push_back(static_cast<int32_t>(k));
      continue;
    }
    for (int64_t r = r0[k]; r <= r1[k]; ++r) for (int64_t q = c0[k]; q <= c1[k]; ++q) ++start[r * nx + q + 1];
  }
  for (int64_t i = 0; i < nx * ny; ++i) start[i + 1] += start[i];
  std::vector<int64_t> stop(start.begin(), start.end() - 1);
  std::vector<int32_t> cells(start.back());
  std::vector<uint8_t> is_big(n, 0);
  for (int32_t k : big) is_big[k] = 1;
  for (int64_t k = 0; k < n; ++k) {
    if (is_big[k]) continue;
    for (int64_t r = r0[k]; r <= r1[k]; ++r) {
      for (int64_t q = c0[k]; q <= c1[k]; ++q) cells[stop[r * nx + q]++] = static_cast<int32_t>(k);
    }
  }
  std::vector<uint8_t> removed(n, 0);
  const T* X1 = c.x1.data(); const T* Y1 = c.y1.data(); const T* X2 = c.x2.data();
  const T* Y2 = c.y2.data(); const T* A = c.area.data();
  for (int64_t p = 0; p < n; ++p) {
    if (removed[p]) continue;
    keep.push_back(c.index[p]);
    const T px1 = X1[p], py1 = Y1[p], px2 = X2[p], py2 = Y2[p], pa = A[p];
    const int32_t pc0 = c0[p], pr0 = r0[p];
    for (int64_t r = r0[p]; r <= r1[p]; ++r) {
      for (int64_t q = c0[p]; q <= c1[p]; ++q) {
        // Visit the cell and drop, in place, entries that can no longer matter: boxes ranked
        // up to p (kept or removed already) and removed boxes.
        int32_t* base = cells.data() + start[r * nx + q];
        int32_t* end = cells.data() + stop[r * nx + q];
        int32_t* w = base;
        for (int32_t* it = base; it != end; ++it) {
          const int32_t j = *it;
          if (j <= p || removed[j]) continue;
          *w++ = j;
          if (std::max(pc0, c0[j]) != q || std::max(pr0, r0[j]) != r) continue;  // pair examined elsewhere
          if (iou_tv(px1, py1, px2, py2, pa, X1[j], Y1[j], X2[j], Y2[j], A[j]) > tf) {
            removed[j] = 1;
            --w;
          }
        }
        stop[r * nx + q] = w - cells.data();
      }
    }
    for (int32_t j : big) {
      if (j > p && !removed[j] && iou_tv(px1, py1, px2, py2, pa, X1[j], Y1[j], X2[j], Y2[j], A[j]) > tf) {
        removed[j] = 1;
      }
    }
  }
}

// Greedy NMS over boxes already listed in score order (`order`); appends kept indices.
template <typename T>
void nms_sorted(const T* boxes, const int64_t* order, int64_t n, double iou_threshold, std::vector<int64_t>& keep) {
  const T tf = threshold_floor<T>(iou_threshold);
  bool grid = n >= kGridMin && tf >= T(0);
  for (int64_t k = 0; grid && k < n; ++k) {
    const T* b = boxes + 4 * order[k];
    grid = std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
  }
  if (grid) nms_grid(boxes, order, n, tf, keep);
  else nms_compact(boxes, order, n, tf, keep);
}

// Indices sorted by descending score; ties keep ascending index (a stable sort, like
// torchvision). NaN scores sort first, as in torch.sort(descending=True).
template <typename T>
std::vector<int64_t> order_by_score(const T* scores, const int64_t* subset, int64_t n) {
  std::vector<std::pair<T, int64_t>> pairs(n);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = subset ? subset[k] : k;
    pairs[k] = {scores[i], i};
  }
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    const bool an = std::isnan(a.first), bn = std::isnan(b.first);
    if (an || bn) return an && !bn;
    return a.first > b.first;
  });
  std::vector<int64_t> order(n);
  for (int64_t k = 0; k < n; ++k) order[k] = pairs[k].second;
  return order;
}

void check_boxes_scores(const at::Tensor& boxes, const at::Tensor& scores) {
  TORCH_CHECK(boxes.device().is_cpu() && scores.device().is_cpu(), "det nms: CPU tensors expected");
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "det nms: boxes must be (N, 4), got ",
              boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0),
              "det nms: scores must be (N,) with N = boxes.size(0), got ", scores.sizes());
  TORCH_CHECK(boxes.scalar_type() == scores.scalar_type(),
              "det nms: boxes and scores must have the same dtype");
  TORCH_CHECK(boxes.scalar_type() == at::kFloat || boxes.scalar_type() == at::kDouble,
              "det nms: float32 or float64 expected, got ", boxes.scalar_type());
}

at::Tensor vector_to_tensor(const std::vector<int64_t>& v) {
  at::Tensor out = at::empty({static_cast<int64_t>(v.size())}, at::kLong);
  std::copy(v.begin(), v.end(), out.data_ptr<int64_t>());
  return out;
}

at::Tensor nms_cpu(const at::Tensor& boxes_in, const at::Tensor& scores_in, double iou_threshold) {
  check_boxes_scores(boxes_in, scores_in);
  const int64_t n = boxes_in.size(0);
  if (n == 0) return at::empty({0}, at::kLong);
  at::Tensor boxes = boxes_in.contiguous(), scores = scores_in.contiguous();
  std::vector<int64_t> keep;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "det_nms", [&] {
    auto order = order_by_score(scores.data_ptr<scalar_t>(), nullptr, n);
    nms_sorted<scalar_t>(boxes.data_ptr<scalar_t>(), order.data(), n, iou_threshold, keep);
  });
  return vector_to_tensor(keep);
}

// Positions grouped by class (classes ascending, original order inside a class) and the
// start of each group.
std::pair<std::vector<int64_t>, std::vector<int64_t>> group_by_class(const at::Tensor& idxs) {
  at::Tensor cls = idxs.to(at::kLong).contiguous();
  const int64_t* c = cls.data_ptr<int64_t>();
  const int64_t n = cls.size(0);
  std::vector<int64_t> pos(n);
  std::iota(pos.begin(), pos.end(), int64_t(0));
  std::stable_sort(pos.begin(), pos.end(), [c](int64_t a, int64_t b) { return c[a] < c[b]; });
  std::vector<int64_t> starts;
  for (int64_t k = 0; k < n; ++k) {
    if (k == 0 || c[pos[k]] != c[pos[k - 1]]) starts.push_back(k);
  }
  starts.push_back(n);
  return {std::move(pos), std::move(starts)};
}

// Class-aware NMS. Returns the kept indices ordered like torchvision's batched_nms for large
// inputs: ascending index, then torch's descending sort of their scores.
at::Tensor batched_nms_cpu(const at::Tensor& boxes_in, const at::Tensor& scores_in,
                           const at::Tensor& idxs, double iou_threshold) {
  check_boxes_scores(boxes_in, scores_in);
  TORCH_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes_in.size(0),
              "det batched_nms: idxs must be (N,), got ", idxs.sizes());
  const int64_t n = boxes_in.size(0);
  if (n == 0) return at::empty({0}, at::kLong);
  at::Tensor boxes = boxes_in.contiguous(), scores = scores_in.contiguous();
  auto [pos, starts] = group_by_class(idxs);
  const int64_t groups = static_cast<int64_t>(starts.size()) - 1;
  at::Tensor mask = at::zeros({n}, at::kBool);
  bool* m = mask.data_ptr<bool>();
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "det_batched_nms", [&] {
    const scalar_t* b = boxes.data_ptr<scalar_t>();
    const scalar_t* s = scores.data_ptr<scalar_t>();
    auto run_group = [&](int64_t g) {
      const int64_t len = starts[g + 1] - starts[g];
      auto order = order_by_score(s, pos.data() + starts[g], len);
      std::vector<int64_t> keep;
      nms_sorted<scalar_t>(b, order.data(), len, iou_threshold, keep);
      for (int64_t i : keep) m[i] = true;  // distinct indices: no write conflicts
    };
    at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) run_group(g);
    });
  });
  at::Tensor keep = mask.nonzero().select(1, 0);
  at::Tensor order = std::get<1>(scores.index_select(0, keep).sort(0, /*descending=*/true));
  return keep.index_select(0, order);
}

// Soft-NMS inside one group (positions `subset`, in ascending index order). Appends the kept
// indices in selection order and their decayed scores. method: 0 linear, 1 gaussian.
template <typename T>
void soft_nms_group(const T* boxes, const T* scores, const int64_t* subset, int64_t n,
                    double iou_threshold, double sigma, double min_score, int64_t method,
                    std::vector<int64_t>& keep, std::vector<T>& kept_scores) {
  std::vector<T> x1(n), y1(n), x2(n), y2(n), area(n), s(n);
  std::vector<int64_t> index(n);
  int64_t end = 0;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = subset[k];
    if (!(static_cast<double>(scores[i]) >= min_score)) continue;
    const T* b = boxes + 4 * i;
    x1[end] = b[0]; y1[end] = b[1]; x2[end] = b[2]; y2[end] = b[3];
    area[end] = (b[2] - b[0]) * (b[3] - b[1]);
    s[end] = scores[i];
    index[end] = i;
    ++end;
  }
  const T thr = static_cast<T>(iou_threshold);
  const T inv_sigma = static_cast<T>(1.0 / sigma);
  const T min_s = static_cast<T>(min_score);
  int64_t best = 0;
  for (int64_t r = 1; r < end; ++r) if (s[r] > s[best]) best = r;
  while (end > 0) {
    const int64_t p = best;
    keep.push_back(index[p]);
    kept_scores.push_back(s[p]);
    const T ix1 = x1[p], iy1 = y1[p], ix2 = x2[p], iy2 = y2[p], ia = area[p];
    int64_t w = 0;
    best = -1;
    for (int64_t r = 0; r < end; ++r) {
      if (r == p) continue;
      const T iou = iou_tv(ix1, iy1, ix2, iy2, ia, x1[r], y1[r], x2[r], y2[r], area[r]);
      T weight;
      if (method == 0) {
        weight = iou > thr ? T(1) - iou : T(1);
      } else {
        weight = iou == iou ? std::exp(-(iou * iou) * inv_sigma) : T(1);
      }
      const T ns = s[r] * weight;
      if (ns < min_s) continue;
      x1[w] = x1[r]; y1[w] = y1[r]; x2[w] = x2[r]; y2[w] = y2[r]; area[w] = area[r];
      index[w] = index[r]; s[w] = ns;
      if (best < 0 || ns > s[best]) best = w;
      ++w;
    }
    end = w;
  }
}

std::tuple<at::Tensor, at::Tensor> batched_soft_nms_cpu(
    const at::Tensor& boxes_in, const at::Tensor& scores_in, const at::Tensor& idxs,
    double iou_threshold, double sigma, double min_score, int64_t method) {
  check_boxes_scores(boxes_in, scores_in);
  TORCH_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes_in.size(0),
              "det soft_nms: idxs must be (N,), got ", idxs.sizes());
  TORCH_CHECK(method == 0 || method == 1, "det soft_nms: method must be 0 (linear) or 1 (gaussian)");
  TORCH_CHECK(sigma > 0, "det soft_nms: sigma must be > 0");
  const int64_t n = boxes_in.size(0);
  if (n == 0) return {at::empty({0}, at::kLong), at::empty({0}, scores_in.options())};
  at::Tensor boxes = boxes_in.contiguous(), scores = scores_in.contiguous();
  auto [pos, starts] = group_by_class(idxs);
  const int64_t groups = static_cast<int64_t>(starts.size()) - 1;
  at::Tensor keep_t, scores_t;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "det_soft_nms", [&] {
    std::vector<std::vector<int64_t>> keeps(groups);
    std::vector<std::vector<scalar_t>> kept(groups);
    const scalar_t* b = boxes.data_ptr<scalar_t>();
    const scalar_t* s = scores.data_ptr<scalar_t>();
    at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        soft_nms_group<scalar_t>(b, s, pos.data() + starts[g], starts[g + 1] - starts[g],
                                 iou_threshold, sigma, min_score, method, keeps[g], kept[g]);
      }
    });
    std::vector<std::pair<scalar_t, int64_t>> all;
    for (int64_t g = 0; g < groups; ++g) {
      for (size_t k = 0; k < keeps[g].size(); ++k) all.push_back({kept[g][k], keeps[g][k]});
    }
    // Descending decayed score; ties keep class order then selection order.
    std::stable_sort(all.begin(), all.end(),
                     [](const auto& a, const auto& c) { return a.first > c.first; });
    const int64_t m = static_cast<int64_t>(all.size());
    keep_t = at::empty({m}, at::kLong);
    scores_t = at::empty({m}, scores.options());
    for (int64_t k = 0; k < m; ++k) {
      keep_t.data_ptr<int64_t>()[k] = all[k].second;
      scores_t.data_ptr<scalar_t>()[k] = all[k].first;
    }
  });
  return {keep_t, scores_t};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def("nms(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor");
  m.def("batched_nms(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor");
  m.def(
      "batched_soft_nms(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold, "
      "float sigma, float min_score, int method) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("nms", &nms_cpu);
  m.impl("batched_nms", &batched_nms_cpu);
  m.impl("batched_soft_nms", &batched_soft_nms_cpu);
}

}  // namespace det
