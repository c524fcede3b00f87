// Class-aware Soft-NMS on CUDA with the selection rules of ops/csrc/cpu/nms.cpp:
// within a class, repeatedly take the highest current score (ties: lowest index), decay the
// others (linear: 1 - IoU above the threshold; gaussian: exp(-IoU^2 / sigma)), drop those below
// min_score. One thread block per class: the selection is sequential, the decay of the
// remaining boxes and the arg-max are spread over the block's threads.
#include "common_cuda.cuh"

#include <ATen/ops/cat.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/unique_consecutive.h>
#include <ATen/ops/zeros.h>

#include <tuple>
#include <vector>

namespace det {
namespace {

constexpr int kBlock = 256;

template <typename T>
__device__ inline T iou_tv(const T* a, const T* b) {
  const T ia = (a[2] - a[0]) * (a[3] - a[1]), ib = (b[2] - b[0]) * (b[3] - b[1]);
  T w = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
  T h = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
  w = w > T(0) ? w : T(0);
  h = h > T(0) ? h : T(0);
  const T inter = w * h;
  return inter / (ia + ib - inter);
}

template <typename T>
__global__ void soft_nms_kernel(const T* __restrict__ boxes, const T* __restrict__ scores,
                                const int64_t* __restrict__ order, const int64_t* __restrict__ starts, T thr,
                                T inv_sigma, T min_s, double min_score, int method, T* __restrict__ s,
                                uint8_t* __restrict__ alive, int64_t* __restrict__ out_idx, T* __restrict__ out_s,
                                int64_t* __restrict__ out_count) {
  const int64_t g = blockIdx.x, begin = starts[g], end = starts[g + 1];
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
    const T v = scores[order[k]];
    s[k] = v;
    alive[k] = static_cast<double>(v) >= min_score;
  }
  __shared__ T best_s[kBlock];
  __shared__ int64_t best_k[kBlock];
  int64_t count = 0;
  __syncthreads();
  while (true) {
    T bs = T(0);
    int64_t bk = -1;
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
      if (alive[k] && (bk < 0 || s[k] > bs)) { bs = s[k]; bk = k; }  // first max of this thread's stride
    }
    best_s[threadIdx.x] = bs;
    best_k[threadIdx.x] = bk;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) {
        const T os = best_s[threadIdx.x + half];
        const int64_t ok = best_k[threadIdx.x + half];
        const int64_t mk = best_k[threadIdx.x];
        if (ok >= 0 && (mk < 0 || os > best_s[threadIdx.x] || (os == best_s[threadIdx.x] && ok < mk))) {
          best_s[threadIdx.x] = os;
          best_k[threadIdx.x] = ok;
        }
      }
      __syncthreads();
    }
    const int64_t p = best_k[0];
    if (p < 0) break;
    if (threadIdx.x == 0) {
      out_idx[begin + count] = order[p];
      out_s[begin + count] = s[p];
      alive[p] = 0;
    }
    ++count;
    const T* bp = boxes + 4 * order[p];
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
      if (!alive[k] || k == p) continue;
      const T iou = iou_tv(bp, boxes + 4 * order[k]);
      T weight;
      if (method == 0) weight = iou > thr ? T(1) - iou : T(1);
      else weight = iou == iou ? exp(-(iou * iou) * inv_sigma) : T(1);
      const T ns = s[k] * weight;
      if (ns < min_s) alive[k] = 0;
      else s[k] = ns;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out_count[g] = count;
}

std::tuple<at::Tensor, at::Tensor> batched_soft_nms_cuda(const at::Tensor& boxes_in, const at::Tensor& scores_in,
                                                         const at::Tensor& idxs, double iou_threshold, double sigma,
                                                         double min_score, int64_t method) {
  TORCH_CHECK(boxes_in.is_cuda() && scores_in.is_cuda() && idxs.is_cuda(), "det soft_nms: CUDA tensors expected");
  TORCH_CHECK(boxes_in.dim() == 2 && boxes_in.size(1) == 4, "det soft_nms: boxes must be (N, 4), got ",
              boxes_in.sizes());
  TORCH_CHECK(scores_in.dim() == 1 && scores_in.size(0) == boxes_in.size(0), "det soft_nms: scores must be (N,)");
  TORCH_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes_in.size(0), "det soft_nms: idxs must be (N,), got ",
              idxs.sizes());
  TORCH_CHECK(method == 0 || method == 1, "det soft_nms: method must be 0 (linear) or 1 (gaussian)");
  TORCH_CHECK(sigma > 0, "det soft_nms: sigma must be > 0");
  const c10::cuda::CUDAGuard guard(boxes_in.device());
  const int64_t n = boxes_in.size(0);
  if (n == 0) return {at::empty({0}, idxs.options().dtype(at::kLong)), at::empty({0}, scores_in.options())};
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor scores = scores_in.to(boxes.scalar_type()).contiguous();
  auto [sorted_cls, order] = at::sort(idxs.to(at::kLong), /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor counts = std::get<2>(at::unique_consecutive(sorted_cls, false, true));
  const at::Tensor starts = at::cat({at::zeros({1}, counts.options()), at::cumsum(counts, 0)});
  const int64_t groups = counts.size(0);
  at::Tensor work = at::empty({n}, scores.options());
  at::Tensor alive = at::empty({n}, scores.options().dtype(at::kByte));
  at::Tensor out_idx = at::empty({n}, order.options());
  at::Tensor out_s = at::empty({n}, scores.options());
  at::Tensor out_count = at::empty({groups}, order.options());
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "det_soft_nms_cuda", [&] {
    using T = scalar_t;
    soft_nms_kernel<T><<<groups, kBlock, 0, c10::cuda::getCurrentCUDAStream()>>>(
        boxes.data_ptr<T>(), scores.data_ptr<T>(), order.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
        static_cast<T>(iou_threshold), static_cast<T>(1.0 / sigma), static_cast<T>(min_score), min_score,
        static_cast<int>(method), work.data_ptr<T>(), alive.data_ptr<uint8_t>(), out_idx.data_ptr<int64_t>(),
        out_s.data_ptr<T>(), out_count.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Gather each class's kept prefix (class order, then selection order), then a stable
  // descending sort by decayed score: the CPU kernel's output order.
  const at::Tensor host_starts = starts.cpu(), host_counts = out_count.cpu();
  std::vector<at::Tensor> idx_parts, score_parts;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t b = host_starts.data_ptr<int64_t>()[g], c = host_counts.data_ptr<int64_t>()[g];
    idx_parts.push_back(out_idx.narrow(0, b, c));
    score_parts.push_back(out_s.narrow(0, b, c));
  }
  const at::Tensor kept_idx = at::cat(idx_parts), kept_s = at::cat(score_parts);
  const at::Tensor rank = std::get<1>(at::sort(kept_s, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  return {kept_idx.index_select(0, rank), kept_s.index_select(0, rank).to(scores_in.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(det, CUDA, m) {
  m.impl("batched_soft_nms", &batched_soft_nms_cuda);
}

}  // namespace det
