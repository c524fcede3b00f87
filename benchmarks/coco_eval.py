"""COCO bbox evaluation: det's compiled backend against pycocotools and faster-coco-eval.

Case: N images x 7 ground truths x 100 detections, 80 classes (COCO val size: 5,000 images).
Each side is timed end to end from COCO result dicts to the 12 stats, the ground truth already
indexed: pycocotools and faster-coco-eval run loadRes + evaluate + accumulate + summarize; det
runs `coco_evaluate(backend='det')` (result validation, array conversion, compiled
evaluate/accumulate, pycocotools' summarize). All sides run in the same process, interleaved.
Parity: det's 12 stats must equal pycocotools' exactly; faster-coco-eval's largest difference
is reported.

Usage: .venv/bin/python benchmarks/coco_eval.py [--quick] [--images N] [--json OUT]
"""
from __future__ import annotations

import contextlib
import copy
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, import_peer, interleaved_ms  # noqa: E402

from det.core.evaluation.coco import coco_evaluate, load_coco_gt, run_cocoeval  # noqa: E402


def make_case(n_img: int, n_gt: int = 7, n_det: int = 100, n_cls: int = 80, seed: int = 0):
    """Ground truths of mixed sizes; detections: jittered copies of them plus random boxes."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_img)]
    wh = np.exp(rng.uniform(np.log(8), np.log(300), (n_img, n_gt, 2)))
    xy = rng.uniform(0, 1, (n_img, n_gt, 2)) * (np.array([640, 480]) - wh)
    cls = rng.integers(1, n_cls + 1, (n_img, n_gt))
    crowd = rng.random((n_img, n_gt)) < 0.01
    anns = [{"id": i * n_gt + j + 1, "image_id": i + 1, "category_id": int(cls[i, j]), "iscrowd": int(crowd[i, j]),
             "bbox": [float(xy[i, j, 0]), float(xy[i, j, 1]), float(wh[i, j, 0]), float(wh[i, j, 1])],
             "area": float(wh[i, j, 0] * wh[i, j, 1])} for i in range(n_img) for j in range(n_gt)]
    dets = []
    for i in range(n_img):
        src = rng.integers(0, n_gt, n_det)
        hit = rng.random(n_det) < 0.3
        box = np.where(hit[:, None], np.concatenate([xy[i, src], wh[i, src]], 1) + rng.normal(0, 4, (n_det, 4)),
                       np.concatenate([rng.uniform(0, 500, (n_det, 2)), rng.uniform(4, 200, (n_det, 2))], 1))
        box[:, 2:] = np.abs(box[:, 2:]) + 1
        cat = np.where(hit & (rng.random(n_det) < 0.9), cls[i, src], rng.integers(1, n_cls + 1, n_det))
        score = rng.random(n_det)
        dets += [{"image_id": i + 1, "category_id": int(cat[k]), "bbox": box[k].tolist(), "score": float(score[k])}
                 for k in range(n_det)]
    cats = [{"id": c, "name": f"class_{c}"} for c in range(1, n_cls + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def pycocotools_stats(coco, dets):
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats


def faster_stats(fce, coco, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        ev = fce.COCOeval_faster(coco, coco.loadRes(dets), "bbox", print_function=lambda *a, **k: None)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats


class Fresh:
    """Hands each call its own deep copy of the results (loadRes mutates them), made untimed."""

    def __init__(self, dets: list[dict], n: int):
        self.copies = [copy.deepcopy(dets) for _ in range(n)]

    def __call__(self) -> list[dict]:
        return self.copies.pop()


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--images", type=int, default=None, help="number of images (default 5000, --quick 500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of det and faster-coco-eval (median)")
    args = parser.parse_args()
    n_img = args.images or (500 if args.quick else 5000)
    gt, dets = make_case(n_img)
    coco = load_coco_gt(gt)
    fce = import_peer("faster_coco_eval")
    fresh_py, fresh_fce = Fresh(dets, 1), Fresh(dets, args.repeat)
    fce_coco = None
    if fce is not None:
        with contextlib.redirect_stdout(io.StringIO()):
            fce_coco = fce.COCO(copy.deepcopy(gt))
    out: dict[str, np.ndarray] = {}
    fast = {"det": lambda: out.__setitem__("det", run_cocoeval(coco, dets, "bbox", (1, 10, 100)).stats)}
    if fce is not None:
        fast["faster-coco-eval"] = lambda: out.__setitem__("faster-coco-eval", faster_stats(fce, fce_coco, fresh_fce()))
    run_cocoeval(coco, dets[:100], "bbox", (1, 10, 100))  # loads torch and det.ops once, as a training run has
    ms = interleaved_ms(fast, repeat=args.repeat, warmup=0)  # medians of interleaved runs
    # pycocotools takes minutes a run: once, right after
    ms.update(interleaved_ms({"pycocotools": lambda: out.__setitem__("pycocotools", pycocotools_stats(coco, fresh_py()))},
                             repeat=1, warmup=0))
    full_ms = interleaved_ms({"det": lambda: coco_evaluate(coco, dets)}, repeat=args.repeat, warmup=0)["det"]
    identical = bool(np.array_equal(out["det"], out["pycocotools"]))
    case = f"{n_img} img x 7 gt x 100 det, 80 cls"
    rows = [{"case": case, "det_ms": ms["det"], "peer": "pycocotools", "peer_ms": ms["pycocotools"],
             "ratio": ms["pycocotools"] / ms["det"], "stats_identical": identical}]
    if "faster-coco-eval" in ms:
        diff = float(np.max(np.abs(np.asarray(out["faster-coco-eval"]) - out["det"])))
        rows.append({"case": case, "det_ms": ms["det"], "peer": "faster-coco-eval", "peer_ms": ms["faster-coco-eval"],
                     "ratio": ms["faster-coco-eval"] / ms["det"], "max_stat_diff": diff})
    notes = [f"det stats: {np.round(out['det'], 4).tolist()}",
             f"det through coco_evaluate (with result validation, MMDetection maxDets 100/300/1000): {full_ms:.0f} ms",
             "ratio = peer_ms / det_ms (> 1: det faster); det and faster-coco-eval: median of interleaved runs "
             "in one process; pycocotools: one run right after"]
    emit("COCO bbox evaluation: det backend vs pycocotools and faster-coco-eval",
         rows, notes, args.json)
    if not identical:
        sys.exit("det's stats differ from pycocotools'")


if __name__ == "__main__":
    main()
