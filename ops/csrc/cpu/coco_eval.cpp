// COCO evaluation (pycocotools' COCOeval.evaluate + accumulate) compiled, for bbox and, with IoUs
// computed by the caller (pycocotools' mask IoU), segm.
//
// Semantics follow pycocotools step by step so that precision/recall/scores are bit-identical:
//  * groups are (category, image); a group's detections are sorted by descending score (stable)
//    and cut to the largest maxDets; its ground truths are ordered non-ignored first (stable);
//  * per IoU threshold, each detection takes the best still-free ground truth (crowds may match
//    many times) with IoU >= min(t, 1 - 1e-10), later ground truths winning ties, and stops at
//    the first ignored one once it holds a regular match;
//  * ground truths are ignored when flagged (pycocotools: iscrowd; LVIS: 'ignore') or outside the
//    area range; unmatched detections are ignored outside the area range or when flagged lenient
//    (LVIS: a class not exhaustively annotated in that image);
//  * a match stores the ground truth's id, so (as in pycocotools) a ground truth with id 0 counts
//    as no match for TP/FP and for the area-range ignore of unmatched detections;
//  * accumulation concatenates, per category, the first maxDet detections of every image in
//    image order, stable-sorts by descending score and computes the interpolated precision at
//    the recall thresholds with pycocotools' operations in pycocotools' order.
// Groups run in parallel in the matching step, (category, maxDets) pairs in accumulation.
#include "common.h"

#include <ATen/ops/full.h>

#include <numeric>
#include <tuple>

namespace det {
namespace {

enum Code : uint8_t { kFP = 0, kTP = 1, kIgnored = 2 };

struct Inputs {
  const int64_t *gt_img, *gt_cat, *gt_crowd, *gt_ignore, *gt_id, *dt_img, *dt_cat, *dt_lenient;
  const double *gt_box, *gt_area, *dt_box, *dt_area, *dt_score;
  const double* ious;          // image-local (dts x gts) matrices, or nullptr for box IoU
  const int64_t* iou_offsets;  // per image start in `ious`
  std::vector<int64_t> gt_local, dt_local, gt_per_image;
};

struct Params {
  std::vector<double> iou_thrs, rec_thrs, area_lo, area_hi;
  std::vector<int64_t> max_dets;
  int64_t T, R, A, M, I, K;
};

// Detections and ground truths of each group (cat * I + img), in input order.
struct Groups {
  std::vector<int64_t> gt_off, gt_idx, dt_off, dt_idx;
  std::vector<int64_t> kept_off;  // start of each group's kept (sorted, cut) detections
  std::vector<int64_t> kept_idx;  // detection index, per kept slot
  std::vector<uint8_t> codes;     // (A, T, kept) match outcome per kept slot
  std::vector<int64_t> npig;      // (groups, A) regular (not ignored) ground truths
};

void bucket(const int64_t* img, const int64_t* cat, int64_t n, int64_t I, int64_t G, std::vector<int64_t>& off,
            std::vector<int64_t>& idx) {
  off.assign(G + 1, 0);
  for (int64_t j = 0; j < n; ++j) ++off[cat[j] * I + img[j] + 1];
  std::partial_sum(off.begin(), off.end(), off.begin());
  std::vector<int64_t> fill(off.begin(), off.end() - 1);
  idx.resize(n);
  for (int64_t j = 0; j < n; ++j) idx[fill[cat[j] * I + img[j]]++] = j;
}

// pycocotools' bbIou for xywh boxes (crowd: intersection over the detection's area).
inline double box_iou(const double* d, const double* g, bool crowd) {
  const double w = std::min(d[2] + d[0], g[2] + g[0]) - std::max(d[0], g[0]);
  if (w <= 0) return 0.0;
  const double h = std::min(d[3] + d[1], g[3] + g[1]) - std::max(d[1], g[1]);
  if (h <= 0) return 0.0;
  const double i = w * h, da = d[2] * d[3], ga = g[2] * g[3];
  return i / (crowd ? da : da + ga - i);
}

// Match one group for every area range and IoU threshold; writes its codes and npig.
void match_group(const Inputs& in, const Params& p, Groups& gr, int64_t g, int64_t kept_total) {
  const int64_t g0 = gr.gt_off[g], G = gr.gt_off[g + 1] - g0;
  const int64_t k0 = gr.kept_off[g], D = gr.kept_off[g + 1] - k0;
  const int64_t* gts = gr.gt_idx.data() + g0;
  const int64_t* dts = gr.kept_idx.data() + k0;
  std::vector<double> iou(D * G);
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t j = 0; j < G; ++j) {
      const int64_t dd = dts[d], gg = gts[j];
      if (in.ious != nullptr) {
        const int64_t img = in.dt_img[dd];
        iou[d * G + j] = in.ious[in.iou_offsets[img] + in.dt_local[dd] * in.gt_per_image[img] + in.gt_local[gg]];
      } else {
        iou[d * G + j] = box_iou(in.dt_box + 4 * dd, in.gt_box + 4 * gg, in.gt_crowd[gg] != 0);
      }
    }
  }
  std::vector<int64_t> order(G);
  std::vector<uint8_t> ig(G), taken(G);
  for (int64_t a = 0; a < p.A; ++a) {
    int64_t regular = 0;
    for (int64_t j = 0; j < G; ++j) {
      const double area = in.gt_area[gts[j]];
      ig[j] = in.gt_ignore[gts[j]] != 0 || area < p.area_lo[a] || area > p.area_hi[a];
      regular += ig[j] == 0;
    }
    gr.npig[g * p.A + a] = regular;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return ig[x] < ig[y]; });
    for (int64_t t = 0; t < p.T; ++t) {
      std::fill(taken.begin(), taken.end(), 0);
      uint8_t* codes = gr.codes.data() + (a * p.T + t) * kept_total + k0;
      for (int64_t d = 0; d < D; ++d) {
        double best = std::min(p.iou_thrs[t], 1 - 1e-10);
        int64_t m = -1;
        for (int64_t s = 0; s < G; ++s) {
          const int64_t j = order[s];
          if (taken[j] && in.gt_crowd[gts[j]] == 0) continue;
          if (m > -1 && ig[m] == 0 && ig[j] == 1) break;
          if (iou[d * G + j] < best) continue;
          best = iou[d * G + j];
          m = j;
        }
        const double area = in.dt_area[dts[d]];
        const bool outside = area < p.area_lo[a] || area > p.area_hi[a] || in.dt_lenient[dts[d]] != 0;
        const bool matched = m > -1 && in.gt_id[gts[m]] != 0;
        if (m > -1) taken[m] = 1;
        const bool ignored = (m > -1 && ig[m]) || (!matched && outside);
        codes[d] = ignored ? kIgnored : (matched ? kTP : kFP);
      }
    }
  }
}

// Precision/recall/scores of category k at maxDets index m for every area range and threshold.
void accumulate_one(const Inputs& in, const Params& p, const Groups& gr, int64_t k, int64_t m, int64_t kept_total,
                    double* precision, double* recall, double* scores) {
  std::vector<int64_t> slots, present;
  for (int64_t i = 0; i < p.I; ++i) {
    const int64_t g = k * p.I + i;
    const bool empty = gr.gt_off[g + 1] == gr.gt_off[g] && gr.dt_off[g + 1] == gr.dt_off[g];
    if (empty) continue;
    present.push_back(g);
    const int64_t n = std::min<int64_t>(gr.kept_off[g + 1] - gr.kept_off[g], p.max_dets[m]);
    for (int64_t s = 0; s < n; ++s) slots.push_back(gr.kept_off[g] + s);
  }
  if (present.empty()) return;
  auto score = [&](int64_t s) { return in.dt_score[gr.kept_idx[s]]; };
  std::stable_sort(slots.begin(), slots.end(), [&](int64_t x, int64_t y) { return -score(x) < -score(y); });
  const int64_t nd = static_cast<int64_t>(slots.size());
  std::vector<double> rc(nd), pr(nd);
  for (int64_t a = 0; a < p.A; ++a) {
    int64_t npig = 0;
    for (int64_t g : present) npig += gr.npig[g * p.A + a];
    if (npig == 0) continue;
    for (int64_t t = 0; t < p.T; ++t) {
      const uint8_t* codes = gr.codes.data() + (a * p.T + t) * kept_total;
      double tp = 0, fp = 0;
      for (int64_t s = 0; s < nd; ++s) {
        const uint8_t c = codes[slots[s]];
        tp += c == kTP;
        fp += c == kFP;
        rc[s] = tp / static_cast<double>(npig);
        pr[s] = tp / (fp + tp + std::numeric_limits<double>::epsilon());
      }
      const int64_t cell = ((t * p.K + k) * p.A + a) * p.M + m;  // (T, K, A, M)
      recall[cell] = nd ? rc[nd - 1] : 0.0;
      for (int64_t s = nd - 1; s > 0; --s) {
        if (pr[s] > pr[s - 1]) pr[s - 1] = pr[s];
      }
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t at = ((t * p.R + r) * p.K + k) * p.A * p.M + a * p.M + m;  // (T, R, K, A, M)
        const int64_t pi = std::lower_bound(rc.begin(), rc.end(), p.rec_thrs[r]) - rc.begin();
        if (pi >= nd) {
          for (int64_t rr = r; rr < p.R; ++rr) {
            const int64_t at2 = ((t * p.R + rr) * p.K + k) * p.A * p.M + a * p.M + m;
            precision[at2] = 0.0;
            scores[at2] = 0.0;
          }
          break;
        }
        precision[at] = pr[pi];
        scores[at] = score(slots[pi]);
      }
    }
  }
}

template <typename T>
std::vector<T> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

void check_1d(const at::Tensor& t, int64_t n, at::ScalarType type, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == type && t.is_contiguous(), "det coco_evaluate: ", name,
              " must be a contiguous CPU tensor of ", type);
  TORCH_CHECK(t.numel() == n, "det coco_evaluate: ", name, " has ", t.numel(), " values, expected ", n);
}

void image_local(const int64_t* img, int64_t n, int64_t I, std::vector<int64_t>& local, std::vector<int64_t>& count) {
  count.assign(I, 0);
  local.resize(n);
  for (int64_t j = 0; j < n; ++j) local[j] = count[img[j]]++;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> coco_evaluate_cpu(
    const at::Tensor& gt_img, const at::Tensor& gt_cat, const at::Tensor& gt_box, const at::Tensor& gt_area,
    const at::Tensor& gt_crowd, const at::Tensor& gt_ignore, const at::Tensor& gt_id, const at::Tensor& dt_img,
    const at::Tensor& dt_cat, const at::Tensor& dt_lenient,
    const at::Tensor& dt_box, const at::Tensor& dt_area, const at::Tensor& dt_score, const at::Tensor& ious,
    const at::Tensor& iou_offsets, int64_t num_images, int64_t num_cats, const at::Tensor& iou_thrs,
    const at::Tensor& rec_thrs, const at::Tensor& area_rng, const at::Tensor& max_dets) {
  const int64_t ng = gt_img.numel(), nd = dt_img.numel(), I = num_images, K = num_cats;
  for (auto [t, n, name] : {std::tuple{&gt_img, ng, "gt_img"}, {&gt_cat, ng, "gt_cat"}, {&gt_crowd, ng, "gt_crowd"},
                            {&gt_ignore, ng, "gt_ignore"}, {&gt_id, ng, "gt_id"}, {&dt_img, nd, "dt_img"},
                            {&dt_cat, nd, "dt_cat"}, {&dt_lenient, nd, "dt_lenient"}}) {
    check_1d(*t, n, at::kLong, name);
  }
  for (auto [t, n, name] : {std::tuple{&gt_box, 4 * ng, "gt_box"}, {&gt_area, ng, "gt_area"},
                            {&dt_box, 4 * nd, "dt_box"}, {&dt_area, nd, "dt_area"}, {&dt_score, nd, "dt_score"}}) {
    check_1d(*t, n, at::kDouble, name);
  }
  Params p{to_vector<double>(iou_thrs), to_vector<double>(rec_thrs), {}, {}, to_vector<int64_t>(max_dets)};
  const std::vector<double> rng = to_vector<double>(area_rng);
  for (size_t a = 0; a + 1 < rng.size(); a += 2) {
    p.area_lo.push_back(rng[a]);
    p.area_hi.push_back(rng[a + 1]);
  }
  p.T = p.iou_thrs.size(), p.R = p.rec_thrs.size(), p.A = p.area_lo.size(), p.M = p.max_dets.size(), p.I = I, p.K = K;
  TORCH_CHECK(p.M > 0, "det coco_evaluate: max_dets is empty");
  Inputs in{gt_img.data_ptr<int64_t>(), gt_cat.data_ptr<int64_t>(), gt_crowd.data_ptr<int64_t>(),
            gt_ignore.data_ptr<int64_t>(), gt_id.data_ptr<int64_t>(), dt_img.data_ptr<int64_t>(),
            dt_cat.data_ptr<int64_t>(), dt_lenient.data_ptr<int64_t>(),
            gt_box.data_ptr<double>(), gt_area.data_ptr<double>(), dt_box.data_ptr<double>(),
            dt_area.data_ptr<double>(), dt_score.data_ptr<double>(), nullptr, nullptr};
  for (int64_t j = 0; j < ng; ++j) {
    TORCH_CHECK(in.gt_img[j] >= 0 && in.gt_img[j] < I && in.gt_cat[j] >= 0 && in.gt_cat[j] < K,
                "det coco_evaluate: ground truth ", j, " has an image or category index out of range");
  }
  for (int64_t j = 0; j < nd; ++j) {
    TORCH_CHECK(in.dt_img[j] >= 0 && in.dt_img[j] < I && in.dt_cat[j] >= 0 && in.dt_cat[j] < K,
                "det coco_evaluate: detection ", j, " has an image or category index out of range");
  }
  std::vector<int64_t> dt_per_image;
  image_local(in.gt_img, ng, I, in.gt_local, in.gt_per_image);
  image_local(in.dt_img, nd, I, in.dt_local, dt_per_image);
  if (ious.numel() > 0 || iou_offsets.numel() > 0) {
    check_1d(iou_offsets, I + 1, at::kLong, "iou_offsets");
    in.iou_offsets = iou_offsets.data_ptr<int64_t>();
    for (int64_t i = 0; i < I; ++i) {
      TORCH_CHECK(in.iou_offsets[i + 1] - in.iou_offsets[i] == dt_per_image[i] * in.gt_per_image[i],
                  "det coco_evaluate: image ", i, " needs a ", dt_per_image[i], " x ", in.gt_per_image[i], " IoU matrix");
    }
    check_1d(ious, in.iou_offsets[I], at::kDouble, "ious");
    in.ious = ious.data_ptr<double>();
  }
  const int64_t G = I * K;
  Groups gr;
  bucket(in.gt_img, in.gt_cat, ng, I, G, gr.gt_off, gr.gt_idx);
  bucket(in.dt_img, in.dt_cat, nd, I, G, gr.dt_off, gr.dt_idx);
  gr.kept_off.assign(G + 1, 0);
  const int64_t cap = *std::max_element(p.max_dets.begin(), p.max_dets.end());
  for (int64_t g = 0; g < G; ++g) gr.kept_off[g + 1] = gr.kept_off[g] + std::min(cap, gr.dt_off[g + 1] - gr.dt_off[g]);
  const int64_t kept_total = gr.kept_off[G];
  gr.kept_idx.resize(kept_total);
  gr.codes.assign(p.A * p.T * kept_total, kFP);
  gr.npig.assign(G * p.A, 0);
  at::parallel_for(0, G, 64, [&](int64_t g0, int64_t g1) {
    std::vector<int64_t> sorted;
    for (int64_t g = g0; g < g1; ++g) {
      sorted.assign(gr.dt_idx.begin() + gr.dt_off[g], gr.dt_idx.begin() + gr.dt_off[g + 1]);
      std::stable_sort(sorted.begin(), sorted.end(),
                       [&](int64_t x, int64_t y) { return -in.dt_score[x] < -in.dt_score[y]; });
      std::copy(sorted.begin(), sorted.begin() + (gr.kept_off[g + 1] - gr.kept_off[g]), gr.kept_idx.begin() + gr.kept_off[g]);
      match_group(in, p, gr, g, kept_total);
    }
  });
  at::Tensor precision = at::full({p.T, p.R, K, p.A, p.M}, -1.0, at::kDouble);
  at::Tensor recall = at::full({p.T, K, p.A, p.M}, -1.0, at::kDouble);
  at::Tensor scores = at::full({p.T, p.R, K, p.A, p.M}, -1.0, at::kDouble);
  double *pp = precision.data_ptr<double>(), *rp = recall.data_ptr<double>(), *sp = scores.data_ptr<double>();
  at::parallel_for(0, K * p.M, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) accumulate_one(in, p, gr, j / p.M, j % p.M, kept_total, pp, rp, sp);
  });
  return {precision, recall, scores};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def(
      "coco_evaluate(Tensor gt_img, Tensor gt_cat, Tensor gt_box, Tensor gt_area, Tensor gt_crowd, Tensor gt_ignore, "
      "Tensor gt_id, Tensor dt_img, Tensor dt_cat, Tensor dt_lenient, Tensor dt_box, Tensor dt_area, Tensor dt_score, "
      "Tensor ious, "
      "Tensor iou_offsets, int num_images, int num_cats, Tensor iou_thrs, Tensor rec_thrs, Tensor area_rng, "
      "Tensor max_dets) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("coco_evaluate", &coco_evaluate_cpu);
}

}  // namespace det
