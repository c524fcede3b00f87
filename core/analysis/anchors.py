"""Anchor shapes for a dataset: k-means with a 1 - IoU distance and differential evolution.

Boxes are compared by shape only (centred at the origin), so IoU(a, b) =
min(wa, wb) * min(ha, hb) / (wa ha + wb hb - min(wa, wb) * min(ha, hb)). Box sizes are first
rescaled the way a keep-ratio resize to `input_shape` (W, H) rescales their image
(factor = min(long side / image long side, short side / image short side), as
MMDetection's Resize(keep_ratio=True)).

k-means: k-means++ seeding with the 1 - IoU distance, Lloyd iterations (assign to the anchor of
highest IoU, move each anchor to its members' mean width and height; an empty cluster restarts at
the worst-covered box), several seeded restarts, best mean IoU kept. MMDetection's optimizer draws
its initial anchors uniformly and leaves empty clusters at zero size, so the restarts and the
re-seeding are why this version does at least as well.
Differential evolution: scipy's, maximising the mean best IoU over all boxes, its population
evaluated in one vectorised call and seeded with the k-means solution (so it never ends below it).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError
from det.core.structures.boxes import box_overlaps

ALGORITHMS = ("kmeans", "differential-evolution")


def keep_ratio_factor(img_w: np.ndarray, img_h: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """Scale factor of a keep-ratio resize of (img_w, img_h) images to input (W, H)."""
    long_side, short_side = max(input_shape), min(input_shape)
    return np.minimum(long_side / np.maximum(img_w, img_h), short_side / np.minimum(img_w, img_h))


def shapes_from_records(records: Sequence[dict], input_shape: Sequence[int]) -> np.ndarray:
    """(N, 2) rescaled box widths and heights from dataset records (`width`, `height`,
    `instances` with xyxy `bbox`); ignored instances are skipped."""
    whs, sizes = [], []
    for rec in records:
        for inst in rec.get("instances", []):
            if inst.get("ignore_flag", False):
                continue
            x1, y1, x2, y2 = inst["bbox"]
            whs.append((x2 - x1, y2 - y1))
            sizes.append((rec["width"], rec["height"]))
    return _rescale(whs, sizes, input_shape)


def shapes_from_coco(data: dict, input_shape: Sequence[int], name: str = "annotations") -> np.ndarray:
    """(N, 2) rescaled box shapes from a COCO annotation dict (crowd and degenerate boxes skipped)."""
    from det.core.evaluation.coco import validate_gt

    validate_gt(data, name)
    sizes = {}
    for img in data["images"]:
        if "width" not in img or "height" not in img:
            raise DetError(f"{name}: image {img['id']} has no width/height (needed to rescale its boxes)")
        sizes[img["id"]] = (img["width"], img["height"])
    whs, img_sizes = [], []
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0) or ann.get("ignore", False) or ann["image_id"] not in sizes:
            continue
        w, h = float(ann["bbox"][2]), float(ann["bbox"][3])
        if w < 1 or h < 1:
            continue
        whs.append((w, h))
        img_sizes.append(sizes[ann["image_id"]])
    return _rescale(whs, img_sizes, input_shape)


def _rescale(whs: list, sizes: list, input_shape: Sequence[int]) -> np.ndarray:
    if not whs:
        raise DetError("no boxes to cluster (the annotations hold no usable boxes)")
    wh = np.asarray(whs, dtype=np.float64)
    size = np.asarray(sizes, dtype=np.float64)
    wh = wh * keep_ratio_factor(size[:, 0], size[:, 1], input_shape)[:, None]
    return wh[(wh[:, 0] > 0) & (wh[:, 1] > 0)]


def shape_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(N, K) IoU of origin-centred boxes (N, 2) and anchors (K, 2)."""
    def at_origin(wh: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros_like(wh), wh], axis=1)

    return box_overlaps(at_origin(np.asarray(boxes, np.float64)), at_origin(np.asarray(anchors, np.float64)), eps=1e-12)


def mean_iou(boxes: np.ndarray, anchors: np.ndarray, weights: np.ndarray | None = None, chunk: int = 200_000) -> float:
    """Mean over boxes of the best IoU with any anchor."""
    best = np.concatenate([shape_iou(boxes[i:i + chunk], anchors).max(1) for i in range(0, len(boxes), chunk)])
    return float(np.average(best, weights=weights))


def _unique(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct shapes and their counts: every computation below is a weighted mean, so this is exact."""
    uniq, counts = np.unique(boxes, axis=0, return_counts=True)
    return uniq, counts.astype(np.float64)


def _kmeanspp(boxes: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centers = [boxes[rng.choice(len(boxes), p=weights / weights.sum())]]
    dist = 1.0 - shape_iou(boxes, np.array(centers))[:, 0]
    for _ in range(1, k):
        p = dist ** 2 * weights
        idx = rng.choice(len(boxes), p=p / p.sum()) if p.sum() > 0 else int(rng.integers(len(boxes)))
        centers.append(boxes[idx])
        dist = np.minimum(dist, 1.0 - shape_iou(boxes, boxes[idx:idx + 1])[:, 0])
    return np.array(centers, dtype=np.float64)


def kmeans_anchors(boxes: np.ndarray, k: int = 9, iters: int = 1000, seed: int = 0, restarts: int = 5,
                   progress: bool = True) -> dict:
    """k-means on box shapes with 1 - IoU; returns anchors (sorted by area) and their mean IoU."""
    if k < 1:
        raise DetError("--num-anchors must be >= 1")
    uniq, weights = _unique(boxes)
    if len(uniq) < k:
        raise DetError(f"only {len(uniq)} distinct box shapes for {k} anchors")
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, int] | None = None
    runs = range(restarts)
    if progress:
        from det.core.log import track

        runs = track(runs, "k-means restarts")
    for _ in runs:
        centers = _kmeanspp(uniq, weights, k, rng)
        assign = None
        done = 0
        for done in range(1, iters + 1):
            iou = shape_iou(uniq, centers)
            new = iou.argmax(1)
            if assign is not None and np.array_equal(new, assign):
                break
            assign = new
            for j in range(k):
                members = assign == j
                if members.any():
                    centers[j] = np.average(uniq[members], axis=0, weights=weights[members])
                else:  # re-seed at the box the current anchors cover worst
                    centers[j] = uniq[int(iou.max(1).argmin())]
        score = mean_iou(uniq, centers, weights)
        if best is None or score > best[0]:
            best = (score, centers.copy(), done)
    assert best is not None
    anchors = sort_by_area(best[1])
    return {"anchors": anchors, "mean_iou": mean_iou(uniq, anchors, weights), "iterations": best[2]}


def de_anchors(boxes: np.ndarray, input_shape: Sequence[int], k: int = 9, iters: int = 1000, seed: int = 0,
               popsize: int = 15, tol: float = 1e-4) -> dict:
    """scipy differential evolution over k (w, h) pairs in [0, W] x [0, H], maximising mean IoU."""
    from scipy.optimize import differential_evolution

    uniq, weights = _unique(boxes)
    total = weights.sum()
    start = kmeans_anchors(boxes, k, iters=300, seed=seed, restarts=3, progress=False)["anchors"]

    def cost(x: np.ndarray) -> np.ndarray:  # x: (2k, S) -> (S,)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        anchors = x.T.reshape(x.shape[1], k, 2)  # (S, k, 2)
        best = np.zeros((x.shape[1], len(uniq)))
        for j in range(k):
            a = anchors[:, j, :]  # (S, 2)
            inter = np.minimum(uniq[None, :, 0], a[:, None, 0]) * np.minimum(uniq[None, :, 1], a[:, None, 1])
            union = (uniq[:, 0] * uniq[:, 1])[None, :] + (a[:, 0] * a[:, 1])[:, None] - inter
            np.maximum(best, inter / np.maximum(union, 1e-12), out=best)
        return 1.0 - (best @ weights) / total

    bounds = [(0.0, float(input_shape[0])), (0.0, float(input_shape[1]))] * k
    rng = np.random.default_rng(seed)
    pop = max(5, popsize) * 2 * k
    init = np.column_stack([rng.uniform(lo, hi, pop) for lo, hi in bounds])
    init[0] = np.clip(start.reshape(-1), [b[0] for b in bounds], [b[1] for b in bounds])
    result = differential_evolution(cost, bounds, maxiter=iters, tol=tol, mutation=(0.5, 1), recombination=0.7,
                                    seed=seed, init=init, polish=False, vectorized=True, updating="deferred")
    anchors = sort_by_area(np.asarray(result.x).reshape(k, 2))
    return {"anchors": anchors, "mean_iou": mean_iou(uniq, anchors, weights), "iterations": int(result.nit)}


def sort_by_area(anchors: np.ndarray) -> np.ndarray:
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    return anchors[np.argsort(anchors[:, 0] * anchors[:, 1], kind="stable")]


def find_anchor_generator(cfg: Any, path: str = "") -> tuple[str, Any] | None:
    """The preset path of the first `anchor_generator` holding `base_sizes` (YOLO-style)."""
    if isinstance(cfg, dict):
        gen = cfg.get("anchor_generator")
        if isinstance(gen, dict) and "base_sizes" in gen:
            return f"{path}.anchor_generator.base_sizes".lstrip("."), gen["base_sizes"]
        for key, value in cfg.items():
            found = find_anchor_generator(value, f"{path}.{key}")
            if found:
                return found
    return None


def set_line(anchors: np.ndarray, key: str = "model.bbox_head.anchor_generator.base_sizes",
             template: Any = None) -> str:
    """A `--set` override distributing the anchors (rounded) over levels like `template`
    (largest anchors on the level whose current anchors are largest); by default 3 levels,
    largest first (YOLOv3's order, strides 32, 16, 8)."""
    ints = [[int(round(w)), int(round(h))] for w, h in sort_by_area(anchors)]
    if isinstance(template, list) and template and all(isinstance(lv, list) for lv in template) and \
            sum(len(lv) for lv in template) == len(ints):
        areas = [np.mean([float(s[0]) * float(s[1]) for s in lv]) if lv else 0.0 for lv in template]
        order = np.argsort(areas, kind="stable")  # levels from smallest to largest anchors
        levels: list[list] = [[] for _ in template]
        pos = 0
        for li in order:
            levels[li] = ints[pos:pos + len(template[li])]
            pos += len(template[li])
    elif len(ints) % 3 == 0:
        n = len(ints) // 3
        levels = [ints[2 * n:], ints[n:2 * n], ints[:n]]
    else:
        levels = [ints]
    text = "[" + ",".join("[" + ",".join(f"[{w},{h}]" for w, h in lv) + "]" for lv in levels) + "]"
    return f"--set {key}={text}"


def optimize_anchors(boxes: np.ndarray, algorithm: str, input_shape: Sequence[int], num_anchors: int = 9,
                     iters: int = 1000, seed: int = 0) -> dict:
    if algorithm not in ALGORITHMS:
        from det.core.errors import did_you_mean

        raise DetError(f"--algorithm '{algorithm}' is not supported{did_you_mean(algorithm, ALGORITHMS)}")
    if len(input_shape) != 2 or min(input_shape) <= 0:
        raise DetError(f"--input-shape needs two positive numbers W H, got {list(input_shape)}")
    if iters < 1:
        raise DetError("--iters must be >= 1")
    if algorithm == "kmeans":
        res = kmeans_anchors(boxes, num_anchors, iters, seed)
    else:
        res = de_anchors(boxes, input_shape, num_anchors, iters, seed)
    rounded = np.round(res["anchors"])
    uniq, weights = _unique(boxes)
    return {"algorithm": algorithm, "input_shape": [int(v) for v in input_shape], "num_anchors": num_anchors,
            "num_boxes": int(len(boxes)), "seed": seed, "iters": iters, "iterations": res["iterations"],
            "anchors": [[int(w), int(h)] for w, h in rounded], "mean_iou": mean_iou(uniq, rounded, weights),
            "anchors_float": [[float(w), float(h)] for w, h in res["anchors"]], "mean_iou_float": res["mean_iou"]}


def boxes_from_preset(preset: str, overrides: Sequence[str], input_shape: Sequence[int]) -> tuple[np.ndarray, Any]:
    """Box shapes of the preset's training dataset (wrappers unwrapped) and its anchor_generator."""
    from det.core.config import load_preset
    from det.core.data.loader import build_dataset

    cfg = load_preset(preset, list(overrides))
    train = (cfg.get("data") or {}).get("train")
    if not isinstance(train, dict) or "dataset" not in train:
        raise DetError(f"{preset}: data.train.dataset is missing")
    ds_cfg = train
    while isinstance(ds_cfg, dict) and "dataset" in ds_cfg:
        ds_cfg = ds_cfg["dataset"]
    ds_cfg = {k: v for k, v in ds_cfg.items() if k != "pipeline"}
    dataset = build_dataset(ds_cfg)
    records = [dataset.get_data_info(i) for i in range(len(dataset))]
    return shapes_from_records(records, input_shape), find_anchor_generator(cfg.get("model", {}), "model")


def write_result(out_dir: str | Path, result: dict, force: bool) -> Path:
    from det.core.fileio import atomic_write_json, ensure_new

    path = ensure_new(Path(out_dir) / "anchor_optimize_result.json", force)
    return atomic_write_json(path, result, indent=2)


def _anchor_generators(cfg: Any, path: str = "") -> list[tuple[str, dict]]:
    """(preset path, section) of every `anchor_generator` under `cfg`."""
    found = []
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            where = f"{path}.{key}".lstrip(".")
            if key == "anchor_generator" and isinstance(value, dict):
                found.append((where, value))
            else:
                found += _anchor_generators(value, where)
    return found


def ratio_line(anchors: Sequence[Sequence[float]], key: str, num_ratios: int) -> str:
    """`--set KEY.ratios=[...]` for a stride-based AnchorGenerator: the anchors' h/w ratios
    split into `num_ratios` groups (sorted), each group's geometric mean."""
    logs = np.sort(np.log([max(float(h), 1e-6) / max(float(w), 1e-6) for w, h in anchors]))
    groups = np.array_split(logs, max(1, min(num_ratios, len(logs))))
    ratios = [round(float(np.exp(g.mean())), 3) for g in groups if len(g)]
    return f"--set {key}.ratios=[{','.join(f'{r:g}' for r in ratios)}]"


def preset_set_line(anchors: Sequence[Sequence[float]], model_cfg: dict) -> tuple[str | None, str | None]:
    """(the `--set` line that applies `anchors` to this model, or None; a note when there is
    none or when only part of the anchors can be applied)."""
    # RTMDet/YOLOX-style point generators sit under the same key but place no anchor boxes
    gens = [(k, g) for k, g in _anchor_generators(model_cfg, "model") if "Point" not in str(g.get("type", ""))]
    if not gens:
        return None, "the model is anchor-free (no anchor boxes): nothing to set; the anchors describe the data"
    key, gen = gens[0]
    if "base_sizes" in gen and isinstance(gen["base_sizes"], list) and gen["base_sizes"] and \
            all(isinstance(lv, list) for lv in gen["base_sizes"]):
        return set_line(np.asarray(anchors), f"{key}.base_sizes", gen["base_sizes"]), None
    num = len(gen.get("ratios") or [0.5, 1.0, 2.0])
    note = (f"{key} places square base sizes per stride (x scales x ratios): the line sets the {num} aspect ratios "
            f"that fit the data; sizes stay tied to the strides")
    return ratio_line(anchors, key, num), note
