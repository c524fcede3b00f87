"""DETR family speed: det.ops.ms_deform_attn against the grid_sample formulation (mmcv's
multi_scale_deformable_attn_pytorch, restated in det.ops.ms_deform_attn_pytorch) at DINO's
shapes, forward and forward+backward; and DINO-R50's forward beside MMDetection's same model
(peer environment; skipped with a message when it is absent).

Shapes: batch 2, the 4 levels of an 800x1333 input (strides 8-64), 8 heads of 32 channels,
4 points; encoder queries = every position (22,223), decoder queries 900.
Usage: python benchmarks/detr.py [--quick] [--repeat N] [--only op,dino] [--json OUT]
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "parity"))
from common import arg_parser, emit, interleaved_ms, median_ms  # noqa: E402

from det.ops import ms_deform_attn  # noqa: E402
from det.ops.ms_deform_attn import ms_deform_attn_pytorch  # noqa: E402


def level_shapes(h: int, w: int) -> list[tuple[int, int]]:
    """Feature sizes of ResNet C3-C5 plus the extra stride-2 level for an h x w input."""
    shapes = []
    for stride in (8, 16, 32):
        shapes.append((math.ceil(h / stride), math.ceil(w / stride)))
    shapes.append((math.ceil(shapes[-1][0] / 2), math.ceil(shapes[-1][1] / 2)))
    return shapes


def op_inputs(shapes, queries: int | None, batch=2, heads=8, channels=32, points=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    st = torch.tensor(shapes, dtype=torch.long)
    areas = st.prod(1)
    starts = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])
    n = int(areas.sum())
    q = n if queries is None else queries
    value = torch.randn(batch, n, heads, channels, generator=g)
    loc = torch.rand(batch, q, heads, len(shapes), points, 2, generator=g)
    attn = torch.rand(batch, q, heads, len(shapes), points, generator=g).softmax(-1)
    return value, st, starts, loc, attn


def bench_op(args, rows) -> None:
    h, w = (400, 667) if args.quick else (800, 1333)
    shapes = level_shapes(h, w)
    for label, queries in (("encoder", None), ("decoder 900 queries", 900)):
        value, st, starts, loc, attn = op_inputs(shapes, queries)
        det_out = ms_deform_attn(value, st, starts, loc, attn)
        ref_out = ms_deform_attn_pytorch(value, st, loc, attn)
        diff = float((det_out - ref_out).abs().max())
        rows.append(row(f"ms_deform_attn forward, {label} ({loc.shape[1]} q)",
                        median_ms(lambda: ms_deform_attn(value, st, starts, loc, attn), args.repeat),
                        median_ms(lambda: ms_deform_attn_pytorch(value, st, loc, attn), args.repeat), diff))
        leaves = [t.clone().requires_grad_() for t in (value, loc, attn)]

        def fwd_bwd(fn):
            def run():
                for t in leaves:
                    t.grad = None
                fn().sum().backward()
            return run

        det_fb = fwd_bwd(lambda: ms_deform_attn(leaves[0], st, starts, leaves[1], leaves[2]))
        ref_fb = fwd_bwd(lambda: ms_deform_attn_pytorch(leaves[0], st, leaves[1], leaves[2]))
        rows.append(row(f"ms_deform_attn forward+backward, {label}", median_ms(det_fb, args.repeat),
                        median_ms(ref_fb, args.repeat), None))


def row(case, det_ms, ref_ms, diff):
    return {"case": case, "det_ms": det_ms, "peer": "grid_sample (mmcv pytorch path)", "peer_ms": ref_ms,
            "ratio": ref_ms / det_ms, "max_abs_diff": diff}


def bench_dino(args, rows, notes) -> None:
    from mmdet_peer import load_mmdet

    peer = load_mmdet()
    if peer is None:
        notes.append("DINO-R50 vs MMDetection skipped: peer environment not found")
        return
    import logging

    from detr_family import REPO, build_mm, convert_and_build

    logging.getLogger("mmengine").setLevel(logging.ERROR)
    MODELS, Config, cfg_dir = peer
    h, w = (400, 667) if args.quick else (800, 1333)
    cfg = Config.fromfile(os.path.join(cfg_dir, "dino/dino-4scale_r50_8xb2-12e_coco.py"))
    mm = build_mm(MODELS, cfg, seed=0)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        det, _ = convert_and_build(mm, REPO / "presets/dino/dino-4scale_r50_8xb2-12e_coco.yaml", [], tmp, "dino")
    from mmdet.structures import DetDataSample

    x = torch.randn(1, 3, h, w)
    meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
            "scale_factor": (1.0, 1.0)}
    repeat = max(1, args.repeat // 2)
    with torch.no_grad():  # interleaved: a change in machine load hits both alike
        times = interleaved_ms({"det": lambda: det(x), "mm": lambda: mm._forward(x, [DetDataSample(metainfo=meta)])},
                               repeat)
    det_ms, mm_ms = times["det"], times["mm"]
    rows.append({"case": f"DINO-R50 forward {h}x{w}", "det_ms": det_ms, "peer": "mmdet 3.3", "peer_ms": mm_ms,
                 "ratio": mm_ms / det_ms, "max_abs_diff": None})
    notes.append(f"DINO forward: det/MMDetection time = {det_ms / mm_ms:.2f} (target <= 0.8)")


def main() -> int:
    parser = arg_parser("DETR family: compiled multi-scale deformable attention and DINO forward")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="op,dino")
    args = parser.parse_args()
    rows, notes = [], [f"torch threads: {torch.get_num_threads()}; ratio = reference time / det time"]
    only = set(args.only.split(","))
    if "op" in only:
        bench_op(args, rows)
    if "dino" in only:
        bench_dino(args, rows, notes)
    emit("DETR family speed", rows, notes, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
