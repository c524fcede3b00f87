"""Compiled ops (det.ops) beside their peers in the same process: torchvision's nms,
batched_nms, roi_align (forward and forward+backward) and sigmoid_focal_loss (time and peak
memory), ensemble-boxes' weighted_boxes_fusion (3 models x 500 images x 100 boxes), and the
vectorised torch bbox_overlaps that the compiled kernel replaces. Each row also checks the
results (identical indices / max abs difference). mmcv's compiled ops are used when the peer
environment has them (mmcv-lite has none).

Usage: python benchmarks/ops.py [--quick] [--repeat N] [--only nms,roi_align,...] [--json OUT]
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, import_peer, median_ms  # noqa: E402

import det.ops as O  # noqa: E402
from det.ops.bbox_overlaps import bbox_overlaps_torch  # noqa: E402


def detector_boxes(n: int, seed: int, classes: int = 80):
    """Candidate boxes as a detector emits them before NMS: sizes 16-256 px in a 1333x800 image."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, generator=g) * torch.tensor([1333.0, 800.0])
    wh = 16 + torch.rand(n, 2, generator=g) * 240
    return (torch.cat([centre - wh / 2, centre + wh / 2], 1), torch.rand(n, generator=g),
            torch.randint(0, classes, (n,), generator=g))


def row(case, det_ms, peer, peer_ms, **extra):
    r = {"case": case, "det_ms": det_ms, "peer": peer, "peer_ms": peer_ms,
         "ratio": (peer_ms / det_ms) if (peer_ms and det_ms) else None}
    r.update(extra)
    return r


def bench_nms(args, rows, notes):
    import torchvision

    for n in ([10_000] if args.quick else [10_000, 100_000]):
        boxes, scores, classes = detector_boxes(n, seed=n)
        rep = args.repeat if n <= 10_000 else max(1, args.repeat // 2)
        same = torch.equal(O.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))
        rows.append(row(f"nms {n} boxes", median_ms(lambda: O.nms(boxes, scores, 0.5), rep), "torchvision",
                        median_ms(lambda: torchvision.ops.nms(boxes, scores, 0.5), rep), identical=same))
        same = torch.equal(O.batched_nms(boxes, scores, classes, 0.5),
                           torchvision.ops.batched_nms(boxes, scores, classes, 0.5))
        rows.append(row(f"batched_nms {n} boxes, 80 classes",
                        median_ms(lambda: O.batched_nms(boxes, scores, classes, 0.5), rep), "torchvision",
                        median_ms(lambda: torchvision.ops.batched_nms(boxes, scores, classes, 0.5), rep),
                        identical=same))
    boxes, scores, classes = detector_boxes(2000, seed=1)
    rows.append(row("soft_nms gaussian 2000 boxes", median_ms(lambda: O.soft_nms(boxes, scores, method="gaussian"),
                                                             args.repeat), None, None))
    mmcv_ops = import_peer("mmcv.ops")
    if mmcv_ops is not None:
        rows.append(row("soft_nms gaussian 2000 boxes", median_ms(lambda: O.soft_nms(boxes, scores, method="gaussian"),
                                                                 args.repeat), "mmcv",
                        median_ms(lambda: mmcv_ops.soft_nms(boxes, scores, 0.3, 0.5, 1e-3, "gaussian"), args.repeat)))
    else:
        notes.append("mmcv.ops is not compiled in the peer environment: no mmcv rows")


def bench_roi_align(args, rows, notes):
    import torchvision

    k = 200 if args.quick else 1000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 200, 304, generator=g)
    centre = torch.rand(k, 2, generator=g) * torch.tensor([1216.0, 800.0])
    wh = 16 + torch.rand(k, 2, generator=g) * 496
    rois = torch.cat([torch.zeros(k, 1), centre - wh / 2, centre + wh / 2], 1)
    for sr in (0, 2):
        a = O.roi_align(x, rois, 7, 0.25, sr, True)
        b = torchvision.ops.roi_align(x, rois, 7, 0.25, sr, True)
        rows.append(row(f"roi_align fwd {k} RoIs 1x256x200x304 sr={sr}",
                        median_ms(lambda: O.roi_align(x, rois, 7, 0.25, sr, True), args.repeat), "torchvision",
                        median_ms(lambda: torchvision.ops.roi_align(x, rois, 7, 0.25, sr, True), args.repeat),
                        max_abs_diff=float((a - b).abs().max())))
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        grad = torch.randn_like(a)
        O.roi_align(xa, rois, 7, 0.25, sr, True).backward(grad)
        torchvision.ops.roi_align(xb, rois, 7, 0.25, sr, True).backward(grad)
        diff = float((xa.grad - xb.grad).abs().max())

        def fwd_bwd(fn, xg):
            xg.grad = None
            fn(xg, rois, 7, 0.25, sr, True).backward(grad)

        rows.append(row(f"roi_align fwd+bwd {k} RoIs sr={sr}", median_ms(lambda: fwd_bwd(O.roi_align, xa), args.repeat),
                        "torchvision", median_ms(lambda: fwd_bwd(torchvision.ops.roi_align, xb), args.repeat),
                        max_abs_diff_grad=diff))


_PEAK = """
import sys, torch
n, which = int(sys.argv[1]), sys.argv[2]
g = torch.Generator().manual_seed(0)
x = torch.randn(n, 80, generator=g).requires_grad_()
t = (torch.rand(n, 80, generator=g) < 0.01).float()
if which == 'det':
    import det.ops as O
    fn = lambda: O.sigmoid_focal_loss(x, t, 0.25, 2.0, 'sum')
else:
    import torchvision
    fn = lambda: torchvision.ops.sigmoid_focal_loss(x, t, 0.25, 2.0, 'sum')
def status(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1])
open('/proc/self/clear_refs', 'w').write('5')  # resets the peak RSS (VmHWM) to the current RSS
before = status('VmRSS')
fn().backward()
print((status('VmHWM') - before) / 1024)
"""


def peak_mib(n: int, which: str) -> float:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(n), which], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_focal(args, rows, notes):
    import torchvision

    n = 20_000 if args.quick else 100_000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 80, generator=g)
    t = (torch.rand(n, 80, generator=g) < 0.01).float()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    for reduction in ("sum", "none"):
        la = O.sigmoid_focal_loss(xa, t, 0.25, 2.0, reduction)
        lb = torchvision.ops.sigmoid_focal_loss(xb, t, 0.25, 2.0, reduction)
        xa.grad = xb.grad = None
        la.sum().backward()
        lb.sum().backward()
        extra = {"max_abs_diff": float((la - lb).detach().abs().max()), "max_abs_diff_grad": float((xa.grad - xb.grad).abs().max())}
        if reduction == "sum":
            extra["max_rel_diff_sum"] = float(((la - lb).abs() / lb.abs()).detach().max())
            extra["extra_peak_MiB"] = peak_mib(n, "det")
            extra["peer_extra_peak_MiB"] = peak_mib(n, "torchvision")

        def fwd_bwd(fn, xg):
            xg.grad = None
            fn(xg, t, 0.25, 2.0, reduction).sum().backward()

        rows.append(row(f"sigmoid_focal_loss fwd+bwd ({n}, 80) reduction={reduction}",
                        median_ms(lambda: fwd_bwd(O.sigmoid_focal_loss, xa), args.repeat), "torchvision",
                        median_ms(lambda: fwd_bwd(torchvision.ops.sigmoid_focal_loss, xb), args.repeat), **extra))


def bench_overlaps(args, rows, notes):
    g = torch.Generator().manual_seed(0)

    def boxes(n):
        c = torch.rand(n, 2, generator=g) * 500
        wh = torch.rand(n, 2, generator=g) * 100
        return torch.cat([c - wh / 2, c + wh / 2], 1)

    for n, m in ((1000, 1000), (8400, 100)):
        a, b = boxes(n), boxes(m)
        for mode in ("iou", "giou"):
            diff = float((O.bbox_overlaps(a, b, mode) - bbox_overlaps_torch(a, b, mode)).abs().max())
            rows.append(row(f"bbox_overlaps {n}x{m} {mode}", median_ms(lambda: O.bbox_overlaps(a, b, mode), args.repeat),
                            "vectorised torch", median_ms(lambda: bbox_overlaps_torch(a, b, mode), args.repeat),
                            max_abs_diff=diff))


def wbf_inputs(images: int, models: int, boxes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(images):
        base = rng.random((boxes, 4)) * 0.8
        per_model = []
        for _ in range(models):
            b = base + rng.normal(0, 0.01, base.shape)
            b[:, 2:] = b[:, :2] + np.abs(b[:, 2:] - b[:, :2]) * 0.25 + 0.01
            per_model.append((np.clip(b, 0, 1).astype(np.float32), rng.random(boxes).astype(np.float32),
                              rng.integers(0, 10, boxes)))
        data.append(per_model)
    return data


def bench_wbf(args, rows, notes):
    eb = import_peer("ensemble_boxes")
    images = 50 if args.quick else 500
    data = wbf_inputs(images, 3, 100)
    flat = [np.concatenate([np.concatenate([m[k] for m in img]) for img in data]) for k in range(3)]
    image_ids = np.repeat(np.arange(images), 300)
    model_ids = np.tile(np.repeat(np.arange(3), 100), images)
    batch = [torch.as_tensor(x) for x in (*flat, image_ids, model_ids)]
    for conf_type in ("avg", "max", "box_and_model_avg", "absent_model_aware_avg"):
        kw = dict(weights=[2, 1, 1], iou_thr=0.55, skip_box_thr=0.0, conf_type=conf_type)

        def det_list():
            return [O.weighted_boxes_fusion([m[0] for m in img], [m[1] for m in img], [m[2] for m in img], **kw)
                    for img in data]

        det_batch_ms = median_ms(lambda: O.weighted_boxes_fusion_batch(*batch, **kw), args.repeat)
        det_list_ms = median_ms(det_list, args.repeat)
        extra = {"det_list_api_ms": det_list_ms}
        peer_ms = None
        if eb is not None:
            import warnings

            def peer():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return [eb.weighted_boxes_fusion([m[0] for m in img], [m[1] for m in img], [m[2] for m in img], **kw)
                            for img in data]

            ref = peer()
            mine = det_list()
            diff = 0.0
            for (rb, rs, rl), (b, s, lab) in zip(ref, mine):
                if rb.shape != b.shape:
                    diff = float("inf")
                    break
                # ensemble-boxes orders equal scores with numpy's unstable argsort: compare
                # both results in one canonical order (score, label, corners).
                ro = np.lexsort((*rb.T[::-1], rl, -rs))
                mo = np.lexsort((*b.T[::-1], lab, -s))
                if not np.array_equal(rl[ro].astype(np.int64), lab[mo]):
                    diff = float("inf")
                    break
                diff = max(diff, float(np.abs(rb[ro] - b[mo]).max(initial=0)), float(np.abs(rs[ro] - s[mo]).max(initial=0)))
            extra["max_abs_diff"] = diff
            peer_ms = median_ms(peer, max(1, args.repeat // 2))
        rows.append(row(f"weighted_boxes_fusion {conf_type} 3 models x {images} images x 100 boxes (batch API)",
                        det_batch_ms, "ensemble-boxes" if eb else None, peer_ms, **extra))


BENCHES = {"nms": bench_nms, "roi_align": bench_roi_align, "focal_loss": bench_focal,
           "bbox_overlaps": bench_overlaps, "wbf": bench_wbf}


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median reported)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    args = parser.parse_args()
    if args.quick:
        args.repeat = min(args.repeat, 3)
    rows, notes = [], [f"threads: {torch.get_num_threads()}; ratio = peer_ms / det_ms (> 1: det is faster)"]
    for name in args.only.split(","):
        BENCHES[name](args, rows, notes)
    emit("Compiled ops (det.ops) vs peers", rows, notes, args.json)


if __name__ == "__main__":
    main()
