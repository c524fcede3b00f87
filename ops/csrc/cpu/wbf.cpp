// Weighted boxes fusion (Solovyev et al.), the algorithm of the ensemble-boxes package, for many
// images in one call (images run in parallel).
//
// Input rows are grouped by image (image_offsets) and, inside an image, listed model by model.
// Per image and label: boxes sorted by weighted score are matched, in that order, to the fused
// box of an existing cluster with the highest IoU (> iou_thr), else start a new cluster; each
// fused box is the score-weighted mean of its members. Fused coordinates and scores are rounded
// to float32 as ensemble-boxes does (it fuses into a float32 array), so results agree with it.
#include "common.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>
#include <vector>

namespace det {
namespace {

enum ConfType : int64_t { kAvg = 0, kMax = 1, kBoxAndModelAvg = 2, kAbsentModelAwareAvg = 3 };

struct Entry {
  double score;   // score * model weight
  double weight;  // model weight
  int64_t model;
  double box[4];
};

struct Cluster {
  std::vector<int64_t> members;  // indices into the label's entries
  double score;                  // fused score field (float32-rounded after the first merge)
  double weight;                 // sum of member weights
  double box[4];
};

struct Fused {
  int64_t label;
  double score;
  double box[4];
};

inline double iou(const double* a, const double* b) {
  const double xa = std::max(a[0], b[0]), ya = std::max(a[1], b[1]);
  const double xb = std::min(a[2], b[2]), yb = std::min(a[3], b[3]);
  const double inter = std::max(xb - xa, 0.0) * std::max(yb - ya, 0.0);
  const double area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const double area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return inter / (area_a + area_b - inter);
}

// Recompute a cluster's fused box from its members, in float32 like ensemble-boxes.
void fuse(Cluster& c, const std::vector<Entry>& entries, int64_t conf_type) {
  float box[4] = {0.f, 0.f, 0.f, 0.f};
  double conf = 0.0, conf_max = -std::numeric_limits<double>::infinity(), w = 0.0;
  for (int64_t m : c.members) {
    const Entry& e = entries[m];
    for (int j = 0; j < 4; ++j) box[j] = static_cast<float>(static_cast<double>(box[j]) + e.score * e.box[j]);
    conf += e.score;
    conf_max = std::max(conf_max, e.score);
    w += e.weight;
  }
  const double n = static_cast<double>(c.members.size());
  c.score = static_cast<float>(conf_type == kMax ? conf_max : conf / n);
  c.weight = static_cast<float>(w);
  for (int j = 0; j < 4; ++j) c.box[j] = static_cast<float>(static_cast<double>(box[j]) / conf);
}

// Fuse one label's entries (already sorted by descending score); appends the fused boxes.
void fuse_label(int64_t label, const std::vector<Entry>& entries, const std::vector<double>& weights,
                double weights_sum, double weights_max, double iou_thr, int64_t conf_type,
                bool allows_overflow, std::vector<Fused>& out) {
  std::vector<Cluster> clusters;
  for (int64_t j = 0; j < static_cast<int64_t>(entries.size()); ++j) {
    const Entry& e = entries[j];
    int64_t best = -1;
    double best_iou = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < static_cast<int64_t>(clusters.size()); ++c) {
      const double v = iou(clusters[c].box, e.box);
      if (v > best_iou) {  // first maximum, like numpy's argmax
        best_iou = v;
        best = c;
      }
    }
    if (best >= 0 && best_iou > iou_thr) {
      clusters[best].members.push_back(j);
      fuse(clusters[best], entries, conf_type);
    } else {
      Cluster c;
      c.members.push_back(j);
      c.score = e.score;
      c.weight = e.weight;
      std::copy(e.box, e.box + 4, c.box);
      clusters.push_back(std::move(c));
    }
  }
  const int64_t num_models = static_cast<int64_t>(weights.size());
  std::vector<char> present(num_models);
  for (const Cluster& c : clusters) {
    const double n = static_cast<double>(c.members.size());
    double score = c.score;
    if (conf_type == kBoxAndModelAvg || conf_type == kAbsentModelAwareAvg) {
      std::fill(present.begin(), present.end(), 0);
      for (int64_t m : c.members) present[entries[m].model] = 1;
      if (conf_type == kBoxAndModelAvg) {
        double model_weights = 0.0;
        for (int64_t k = 0; k < num_models; ++k) if (present[k]) model_weights += weights[k];
        score = score * n / c.weight;
        score = score * model_weights / weights_sum;
      } else {
        double absent = 0.0;
        for (int64_t k = 0; k < num_models; ++k) if (!present[k]) absent += weights[k];
        score = score * n / (c.weight + absent);
      }
    } else if (conf_type == kMax) {
      score = score / weights_max;
    } else if (!allows_overflow) {
      score = score * std::min(static_cast<double>(num_models), n) / weights_sum;
    } else {
      score = score * n / weights_sum;
    }
    out.push_back(Fused{label, score, {c.box[0], c.box[1], c.box[2], c.box[3]}});
  }
}

// Descending by key; equal keys come out in reverse input order (numpy's argsort()[::-1]
// for a stable ascending sort).
template <typename Item, typename Key>
void sort_descending(std::vector<Item>& items, Key key) {
  std::reverse(items.begin(), items.end());
  std::stable_sort(items.begin(), items.end(), [&](const Item& a, const Item& b) { return key(a) > key(b); });
}

void fuse_image(const double* boxes, const double* scores, const int64_t* labels, const int64_t* models,
                int64_t begin, int64_t end, const std::vector<double>& weights, double weights_sum,
                double weights_max, double iou_thr, double skip_box_thr, int64_t conf_type,
                bool allows_overflow, std::vector<Fused>& out) {
  std::vector<int64_t> label_order;  // labels in order of first appearance
  std::unordered_map<int64_t, std::vector<Entry>> by_label;
  for (int64_t i = begin; i < end; ++i) {
    if (scores[i] < skip_box_thr) continue;
    double x1 = boxes[4 * i], y1 = boxes[4 * i + 1], x2 = boxes[4 * i + 2], y2 = boxes[4 * i + 3];
    if (x2 < x1) std::swap(x1, x2);
    if (y2 < y1) std::swap(y1, y2);
    x1 = std::clamp(x1, 0.0, 1.0); x2 = std::clamp(x2, 0.0, 1.0);
    y1 = std::clamp(y1, 0.0, 1.0); y2 = std::clamp(y2, 0.0, 1.0);
    if ((x2 - x1) * (y2 - y1) == 0.0) continue;  // zero-area boxes are skipped
    const int64_t m = models[i];
    auto [it, inserted] = by_label.try_emplace(labels[i]);
    if (inserted) label_order.push_back(labels[i]);
    it->second.push_back(Entry{scores[i] * weights[m], weights[m], m, {x1, y1, x2, y2}});
  }
  const size_t first = out.size();
  for (int64_t label : label_order) {
    std::vector<Entry>& entries = by_label[label];
    sort_descending(entries, [](const Entry& e) { return e.score; });
    fuse_label(label, entries, weights, weights_sum, weights_max, iou_thr, conf_type, allows_overflow, out);
  }
  std::vector<Fused> mine(out.begin() + first, out.end());
  sort_descending(mine, [](const Fused& f) { return f.score; });
  std::copy(mine.begin(), mine.end(), out.begin() + first);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wbf_cpu(
    const at::Tensor& boxes_in, const at::Tensor& scores_in, const at::Tensor& labels_in,
    const at::Tensor& models_in, const at::Tensor& offsets_in, const at::Tensor& weights_in, double iou_thr,
    double skip_box_thr, int64_t conf_type, bool allows_overflow) {
  TORCH_CHECK(boxes_in.dim() == 2 && boxes_in.size(1) == 4, "det wbf: boxes must be (N, 4), got ", boxes_in.sizes());
  const int64_t n = boxes_in.size(0);
  TORCH_CHECK(scores_in.numel() == n && labels_in.numel() == n && models_in.numel() == n,
              "det wbf: scores, labels and models must have N = ", n, " values");
  TORCH_CHECK(offsets_in.dim() == 1 && offsets_in.numel() >= 1, "det wbf: image_offsets must be (I + 1,)");
  TORCH_CHECK(conf_type >= 0 && conf_type <= 3, "det wbf: conf_type must be 0..3");
  at::Tensor boxes = boxes_in.to(at::kDouble).contiguous();
  at::Tensor scores = scores_in.to(at::kDouble).contiguous();
  at::Tensor labels = labels_in.to(at::kLong).contiguous();
  at::Tensor models = models_in.to(at::kLong).contiguous();
  at::Tensor offsets = offsets_in.to(at::kLong).contiguous();
  at::Tensor wt = weights_in.to(at::kDouble).contiguous();
  std::vector<double> weights(wt.data_ptr<double>(), wt.data_ptr<double>() + wt.numel());
  TORCH_CHECK(!weights.empty(), "det wbf: weights must hold one value per model");
  const int64_t* mp = models.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(mp[i] >= 0 && mp[i] < static_cast<int64_t>(weights.size()), "det wbf: model index ", mp[i],
                " outside [0, ", weights.size(), ")");
  }
  const int64_t images = offsets.numel() - 1;
  const int64_t* off = offsets.data_ptr<int64_t>();
  TORCH_CHECK(off[0] == 0 && off[images] == n, "det wbf: image_offsets must run from 0 to N");
  for (int64_t k = 0; k < images; ++k) TORCH_CHECK(off[k] <= off[k + 1], "det wbf: image_offsets must not decrease");
  double weights_sum = 0.0, weights_max = -std::numeric_limits<double>::infinity();
  for (double w : weights) {
    weights_sum += w;
    weights_max = std::max(weights_max, w);
  }
  std::vector<std::vector<Fused>> per_image(images);
  at::parallel_for(0, images, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t k = i0; k < i1; ++k) {
      fuse_image(boxes.data_ptr<double>(), scores.data_ptr<double>(), labels.data_ptr<int64_t>(), mp, off[k],
                 off[k + 1], weights, weights_sum, weights_max, iou_thr, skip_box_thr, conf_type,
                 allows_overflow, per_image[k]);
    }
  });
  at::Tensor out_offsets = at::empty({images + 1}, at::kLong);
  int64_t* oo = out_offsets.data_ptr<int64_t>();
  oo[0] = 0;
  for (int64_t k = 0; k < images; ++k) oo[k + 1] = oo[k] + static_cast<int64_t>(per_image[k].size());
  const int64_t total = oo[images];
  at::Tensor out_boxes = at::empty({total, 4}, at::kDouble);
  at::Tensor out_scores = at::empty({total}, at::kDouble);
  at::Tensor out_labels = at::empty({total}, at::kLong);
  double* ob = out_boxes.data_ptr<double>();
  double* os = out_scores.data_ptr<double>();
  int64_t* ol = out_labels.data_ptr<int64_t>();
  for (int64_t k = 0; k < images; ++k) {
    int64_t r = oo[k];
    for (const Fused& f : per_image[k]) {
      std::copy(f.box, f.box + 4, ob + 4 * r);
      os[r] = f.score;
      ol[r] = f.label;
      ++r;
    }
  }
  return {out_boxes, out_scores, out_labels, out_offsets};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(det, m) {
  m.def(
      "weighted_boxes_fusion(Tensor boxes, Tensor scores, Tensor labels, Tensor models, "
      "Tensor image_offsets, Tensor weights, float iou_thr, float skip_box_thr, int conf_type, "
      "bool allows_overflow) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(det, CPU, m) {
  m.impl("weighted_boxes_fusion", &wbf_cpu);
}

}  // namespace det
