"""Reports drawn for the user after `det train` and `det test`: training curves (results.png),
per-class PR curves (pr_curve.png), the per-class AP table (per_class_ap.csv), the confusion
matrix and a ground truth | prediction grid (val_predictions.jpg)."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.fileio import atomic_write, atomic_write_text

AP_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
GRID_IMAGES = 8


def results_figure(log_path: str | Path, out: str | Path) -> Path | None:
    """Losses, learning rate and validation metrics over iterations, one panel each."""
    from det.core.analysis.logs import load_log, plot_logs

    run = load_log(log_path)
    keys = run.keys()
    losses = [k for k in keys if k.startswith("loss")]
    metrics = [k for k in keys if k.endswith(("_mAP", "_mAP_50")) or k in ("pascal_voc/mAP", "HOTA")]
    wanted = losses + [k for k in ("lr",) if k in keys] + metrics
    if not wanted:
        return None
    plot_logs([run], wanted, out, legend=["this run"], title=f"{Path(log_path).parent}: losses, lr and validation metrics")
    return Path(out)


def coco_precision(gt: dict, results: list[dict], iou_type: str = "bbox") -> tuple[np.ndarray, list[str]]:
    """pycocotools' accumulated precision (T=10 IoUs, R=101 recalls, K classes, A=4 areas,
    M=3 maxDets) and the class names in category-id order."""
    from pycocotools.cocoeval import COCOeval

    from det.core.evaluation.coco import _load_res, load_coco_gt, quiet

    coco = load_coco_gt(gt)
    dt = _load_res(coco, results, iou_type)
    ev = COCOeval(coco, dt, iou_type)
    with quiet():
        ev.evaluate()
        ev.accumulate()
    names = [str(coco.cats[c].get("name", c)) for c in ev.params.catIds]
    return ev.eval["precision"], names


def _ap(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float("nan")


def per_class_ap(precision: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class (maxDets 100): AP, AP50, AP75 and AP by area, NaN where undefined."""
    rows = []
    for k, name in enumerate(names):
        p = precision[:, :, k, :, -1]
        values = (_ap(p[:, :, 0]), _ap(p[0, :, 0]), _ap(p[5, :, 0]), _ap(p[:, :, 1]), _ap(p[:, :, 2]), _ap(p[:, :, 3]))
        rows.append({"class": name, **dict(zip(AP_COLUMNS, values))})
    return rows


def ap_csv(rows: Sequence[dict]) -> str:
    """CSV with empty cells where a value is undefined (no ground truth in that class/area)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["class", *AP_COLUMNS])
    for row in rows:
        writer.writerow([row["class"], *("" if math.isnan(row[c]) else f"{row[c]:.4f}" for c in AP_COLUMNS)])
    return buf.getvalue()


def plot_pr_curves(precision: np.ndarray, names: Sequence[str], out: str | Path) -> Path:
    """Precision against recall at IoU 0.5 (all areas, 100 detections), one line per class,
    with the class AP50 in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall = np.linspace(0, 1, precision.shape[1])
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for k, name in enumerate(names):
        p = precision[0, :, k, 0, -1]
        if (p > -1).any():
            ax.plot(recall, np.where(p > -1, p, np.nan), linewidth=1.4, label=f"{name} {_ap(p):.3f}")
    ap50 = _ap(precision[0, :, :, 0, -1])
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=f"PR curves at IoU 0.5 (mAP@0.5 {ap50:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)
    return Path(out)


def detection_reports(gt: dict, results: list[dict], out_dir: str | Path, score_thr: float = 0.3,
                      iou_type: str = "bbox") -> dict[str, Any]:
    """pr_curve.png, per_class_ap.csv, confusion_matrix.png/.csv in `out_dir`; returns the
    per-class rows and the files written."""
    from det.core.analysis.confusion import confusion_matrix, matrix_csv, plot_matrix, read_gt

    out_dir = Path(out_dir)
    precision, names = coco_precision(gt, results, "segm" if iou_type == "segm" else "bbox")
    rows = per_class_ap(precision, names)
    files = {"pr_curve": str(plot_pr_curves(precision, names, out_dir / "pr_curve.png")),
             "per_class_ap": str(atomic_write_text(out_dir / "per_class_ap.csv", ap_csv(rows)))}
    gt_info = read_gt(gt, "ground truth")
    cm = confusion_matrix(gt_info, results, score_thr=score_thr)
    plot_matrix(cm, gt_info.classes, out_dir / "confusion_matrix.png")
    atomic_write_text(out_dir / "confusion_matrix.csv", matrix_csv(cm, gt_info.classes))
    files["confusion_matrix"] = str(out_dir / "confusion_matrix.png")
    return {"per_class_ap": rows, "files": files}


MIN_DRAW_SIDE = 320  # small images are enlarged before drawing so labels do not cover them


def draw_gt_pred(img: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, pred: Any, classes: Sequence[str],
                 palette: Any = None, gap: int = 4) -> np.ndarray:
    """`ground truth | prediction` side by side (BGR), each captioned; images whose shorter
    side is under MIN_DRAW_SIDE px are enlarged first (boxes with them)."""
    import cv2

    from det.core.vis import draw_instances
    from det.core.vis.draw import caption

    f = max(1.0, MIN_DRAW_SIDE / max(1, min(img.shape[:2])))
    if f > 1:
        img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_NEAREST)
    boxes = _numpy(pred.bboxes).reshape(-1, 4) * f
    scores = _numpy(pred.scores) if pred.scores is not None else None
    masks = _numpy(pred.masks) if getattr(pred, "masks", None) is not None and f == 1 else None
    left = draw_instances(img, np.asarray(gt_boxes, np.float64).reshape(-1, 4) * f, gt_labels, classes, palette=palette)
    right = draw_instances(img, boxes, _numpy(pred.labels), classes, scores=scores, masks=masks, palette=palette)
    left, right = caption(left, "ground truth"), caption(right, "prediction")
    return np.concatenate([left, np.full((left.shape[0], gap, 3), 255, np.uint8), right], axis=1)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "to_bitmaps"):
        x = x.to_bitmaps()
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class ReportCollector:
    """Evaluator-shaped sink that keeps COCO results for the reports and the first images'
    predictions for the ground truth | prediction grid."""

    def __init__(self, dataset: Any, score_thr: float = 0.3, grid_images: int = GRID_IMAGES, with_masks: bool = False):
        self.dataset, self.score_thr, self.grid_images, self.with_masks = dataset, score_thr, grid_images, with_masks
        self.cat_ids = [int(i) for i in getattr(dataset, "cat_ids", None) or range(1, len(dataset.classes) + 1)]
        self.reset()

    def reset(self) -> None:
        self.coco_results: list[dict] = []
        self.kept: list[tuple[str, Any, Any]] = []

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        for sample, pred in zip(samples, preds):
            self.coco_results += pred.to_coco(sample.img_id, self.cat_ids, self.with_masks)
            if len(self.kept) < self.grid_images and sample.img_path:
                keep = pred.scores >= self.score_thr if pred.scores is not None else slice(None)
                self.kept.append((sample.img_path, sample.img_id, pred[keep]))

    __call__ = process

    def gather(self) -> None:
        """Every rank's results (call on all ranks)."""
        from det.core import dist

        self.coco_results = [r for part in dist.all_gather_object(self.coco_results) for r in part]

    def write(self, gt_doc: dict, out_dir: Path, iou_type: str = "bbox") -> dict[str, Any]:
        """All reports into `out_dir` (rank 0)."""
        import cv2

        from det.core.analysis.confusion import read_gt

        report = detection_reports(gt_doc, self.coco_results, out_dir, self.score_thr, iou_type)
        gt = read_gt(gt_doc, "ground truth")
        classes = list(self.dataset.classes)
        palette = getattr(self.dataset, "palette", None)
        pairs = []
        for path, img_id, pred in self.kept:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is not None and img_id in gt.boxes:
                pairs.append(draw_gt_pred(img, gt.boxes[img_id], gt.labels[img_id], pred, classes, palette))
        if pairs:
            report["files"]["val_predictions"] = str(prediction_grid_rows(pairs, out_dir / "val_predictions.jpg"))
        return report


def prediction_grid_rows(pairs: Sequence[np.ndarray], out: str | Path, width: int = 720, pad: int = 8) -> Path:
    """`ground truth | prediction` images, each scaled to `width`, two per row, as JPEG."""
    import cv2

    scaled = [cv2.resize(p, (width, max(1, round(p.shape[0] * width / p.shape[1]))), interpolation=cv2.INTER_AREA)
              for p in pairs]
    rows = []
    for i in range(0, len(scaled), 2):
        row = scaled[i:i + 2]
        h = max(p.shape[0] for p in row)
        cells = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in row]
        if len(cells) == 1 and len(scaled) > 1:
            cells.append(np.full((h, width, 3), 255, np.uint8))
        rows.append(np.concatenate([c if k == 0 else np.pad(c, ((0, 0), (pad, 0), (0, 0)), constant_values=255)
                                    for k, c in enumerate(cells)], axis=1))
    grid = np.concatenate([r if k == 0 else np.pad(r, ((pad, 0), (0, 0), (0, 0)), constant_values=255)
                           for k, r in enumerate(rows)], axis=0)
    ok, buf = cv2.imencode(".jpg", grid, [cv2.IMWRITE_JPEG_QUALITY, 92])
    atomic_write(out, lambda fh: fh.write(buf.tobytes()))
    return Path(out)
