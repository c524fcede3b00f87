"""COCO error analysis (the seed's coco_error_analysis): PR curves that remove one error at a time.

For each category and area range, precision at 101 recall points (at most 100 detections) under
progressively more lenient judgements, stacked as the Hoiem-style plot:
C75 (IoU .75), C50 (IoU .50), Loc (IoU .10: localisation errors forgiven), Sim (confusions with
classes of the same supercategory forgiven), Oth (confusions with any class forgiven),
BG (background false positives forgiven: precision 1 wherever Oth > 0), FN (everything: 1).
'Forgiven' ground truths are relabelled to the evaluated class and become crowd regions, which
is how the seed's tool does it; a category without 'supercategory' has no Sim confusions.
All evaluations run on det's compiled COCO evaluator.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError

ERROR_TYPES = ("C75", "C50", "Loc", "Sim", "Oth", "BG", "FN")
AREA_NAMES = ("allarea", "small", "medium", "large")
COLORS = [(1, 1, 1), (1, 1, 1), (0.31, 0.51, 0.74), (0.75, 0.31, 0.30), (0.36, 0.90, 0.38), (0.50, 0.39, 0.64),
          (1, 0.6, 0)]


def _params(coco, iou_type: str, iou_thrs: Sequence[float], areas: Sequence[float] | None):
    from pycocotools.cocoeval import Params

    from det.core.evaluation.coco_fast import normalise_params

    p = Params(iouType=iou_type)
    p.imgIds, p.catIds = coco.getImgIds(), coco.getCatIds()
    p.iouThrs, p.maxDets = np.array(iou_thrs, dtype=np.float64), [100]
    if areas:
        p.areaRng = [[0, areas[2]], [0, areas[0]], [areas[0], areas[1]], [areas[1], areas[2]]]
    normalise_params(p)
    return p


def _forgiving(coco, gt: dict, dt: dict, k: int, same_group: np.ndarray, iou_type: str, p) -> np.ndarray:
    """Precision (R, A, M) of class k at IoU .1 with the ground truths of `same_group` classes
    (other than k) relabelled to k as crowd regions."""
    from det.core.evaluation.coco_fast import accumulate

    relabel = same_group[gt["cat"]] & (gt["cat"] != k)
    keep = relabel | (gt["cat"] == k)
    sub_gt = {key: (v[keep] if isinstance(v, np.ndarray) else v) for key, v in gt.items() if key not in ("anns", "rle")}
    sub_gt["crowd"] = np.where(relabel[keep], 1, sub_gt["crowd"])
    sub_gt["cat"] = np.zeros(int(keep.sum()), dtype=np.int64)
    sub_gt["anns"] = [a for a, f in zip(gt["anns"], keep.tolist()) if f]
    if "rle" in gt:
        sub_gt["rle"] = [r for r, f in zip(gt["rle"], keep.tolist()) if f]
    mine = dt["cat"] == k
    sub_dt = {key: (v[mine] if isinstance(v, np.ndarray) else v) for key, v in dt.items() if key not in ("dets", "rle")}
    sub_dt["cat"] = np.zeros(int(mine.sum()), dtype=np.int64)
    sub_dt["dets"] = [d for d, f in zip(dt["dets"], mine.tolist()) if f]
    if "rle" in dt:
        sub_dt["rle"] = [r for r, f in zip(dt["rle"], mine.tolist()) if f]
    return accumulate(coco, sub_gt, sub_dt, iou_type, p, 1)[0][0, :, 0]


def error_precisions(coco, results: list[dict], iou_type: str = "bbox", areas: Sequence[float] | None = None,
                     progress=None) -> tuple[np.ndarray, dict]:
    """ps (7, R, K, A, 1): precision per error type, recall threshold, class, area range; and params."""
    from det.core.evaluation.coco_fast import accumulate, prepare

    if areas is not None and len(areas) != 3:
        raise DetError(f"--areas needs 3 values (small/medium/large upper bounds), got {len(areas)}")
    p = _params(coco, iou_type, (0.75, 0.5, 0.1), areas)
    gt, dt = prepare(coco, results, iou_type, p)
    K = len(p.catIds)
    ps = accumulate(coco, gt, dt, iou_type, p, K)[0]
    ps = np.concatenate([ps, np.zeros((4, *ps.shape[1:]))])
    p_loose = copy.copy(p)
    p_loose.iouThrs = np.array([0.1])
    supers = [coco.cats[c].get("supercategory") for c in p.catIds]
    for k in range(K):
        same = np.array([s is not None and s == supers[k] for s in supers]) if supers[k] is not None else np.eye(K, dtype=bool)[k]
        ps[3, :, k] = _forgiving(coco, gt, dt, k, same, iou_type, p_loose)
        ps[4, :, k] = _forgiving(coco, gt, dt, k, np.ones(K, dtype=bool), iou_type, p_loose)
        if progress is not None:
            progress()
    ps[ps == -1] = 0
    ps[5] = ps[4] > 0
    ps[6] = 1.0
    return ps, {"rec_thrs": np.asarray(p.recThrs), "cat_ids": [int(c) for c in p.catIds]}


def summary(ps: np.ndarray) -> dict[str, float]:
    """{'C75': AP, ...} averaged over recall points (and classes when given)."""
    return {t: float(ps[i].mean()) for i, t in enumerate(ERROR_TYPES)}


def error_table(ps: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows {class, area, C75, ..., FN}: overall ('all') first, then each class."""
    rows = []
    for a, area in enumerate(AREA_NAMES[: ps.shape[3]]):
        rows.append({"class": "all", "area": area, **summary(ps[:, :, :, a, 0])})
    for k, name in enumerate(names):
        for a, area in enumerate(AREA_NAMES[: ps.shape[3]]):
            rows.append({"class": name, "area": area, **summary(ps[:, :, k, a, 0])})
    return rows


def plot_errors(rec_thrs: np.ndarray, ps_class: np.ndarray, title: str, path: Path) -> None:
    """One stacked PR plot: ps_class (7, R) or (7, R, K) for one area range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from det.core.fileio import atomic_write

    aps = [float(x.mean()) for x in ps_class]
    curves = [np.zeros(len(rec_thrs))] + [x.mean(axis=1) if x.ndim > 1 else x for x in ps_class]
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, name in enumerate(ERROR_TYPES):
        ax.plot(rec_thrs, curves[i + 1], color=(0, 0, 0), linewidth=0.5)
        ax.fill_between(rec_thrs, curves[i], curves[i + 1], color=COLORS[i], label=f"[{aps[i]:.3f}] {name}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(loc="lower left", fontsize=8)
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def analyze_errors(results_path: str | Path, ann_path: str | Path, out_dir: str | Path, iou_type: str = "bbox",
                   areas: Sequence[float] | None = None, plots: bool = True) -> dict[str, Any]:
    """Run the error analysis; write out_dir/<iou_type>/<iou_type>-<class>-<area>.png, errors.csv, errors.json."""
    import csv
    import io

    from det.core.evaluation.coco import load_coco_gt, load_coco_results
    from det.core.fileio import atomic_write_json, atomic_write_text
    from det.core.log import make_progress

    if iou_type not in ("bbox", "segm"):
        raise DetError(f"--metric '{iou_type}': the error analysis supports bbox and segm")
    coco = load_coco_gt(ann_path)
    results = load_coco_results(results_path, coco, iou_type)
    out = Path(out_dir) / iou_type
    with make_progress() as bar:
        task = bar.add_task("error analysis: classes", total=len(coco.getCatIds()), info="")
        ps, info = error_precisions(coco, results, iou_type, areas, progress=lambda: bar.advance(task))
    names = [str(coco.cats[c].get("name", c)) for c in info["cat_ids"]]
    rows = error_table(ps, names)
    files = []
    if plots:
        jobs = [("allclass", ps[:, :, :, a, 0], a) for a in range(ps.shape[3])]
        jobs += [(n, ps[:, :, k, a, 0], a) for k, n in enumerate(names) for a in range(ps.shape[3])]
        with make_progress() as bar:
            task = bar.add_task("error analysis: plots", total=len(jobs), info="")
            for name, curve, a in jobs:
                title = f"{iou_type}-{name}-{AREA_NAMES[a]}"
                files.append(str(out / f"{_safe(title)}.png"))
                plot_errors(info["rec_thrs"], curve, title, Path(files[-1]))
                bar.advance(task)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["class", "area", *ERROR_TYPES])
    writer.writeheader()
    writer.writerows({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    atomic_write_text(out / "errors.csv", buf.getvalue())
    atomic_write_json(out / "errors.json", rows, indent=1)
    return {"metric": iou_type, "overall": rows[0], "rows": rows, "table": str(out / "errors.csv"), "plots": files}
