"""`det confusion-matrix`: MMDetection's detection confusion matrix from COCO files."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, default_run_dir, err, in_range, out, print_json
from det.core.analysis import confusion as C
from det.core.fileio import atomic_write_text, ensure_new


def confusion_matrix(
    results: Path = typer.Argument(..., help="COCO results JSON (image_id, category_id, bbox xywh, score)."),
    ann: Path = typer.Option(..., "--ann", help="COCO ground-truth JSON."),
    score_thr: float = typer.Option(0.3, "--score-thr", callback=in_range(0, 1), help="Ignore detections scoring below this."),
    tp_iou_thr: float = typer.Option(0.5, "--tp-iou-thr", callback=in_range(0, 1), help="IoU at which a detection matches a ground truth."),
    nms_iou_thr: Optional[float] = typer.Option(None, "--nms-iou-thr", callback=in_range(0, 1), help="Re-run per-class NMS at this IoU first."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Folder for confusion_matrix.png and .csv [default: runs/confusion-matrix/N]."),
    show: bool = typer.Option(False, "--show", help="Also print the full count matrix as a table."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Confusion matrix (background row/column), per-class precision and recall.

    Writes confusion_matrix.csv (raw counts; rows ground-truth classes then background, columns
    predicted classes then background) and confusion_matrix.png (row-normalised %, with counts).

    Example: det confusion-matrix results.json --ann annotations/instances_val2017.json --out-dir cm/
    """
    out_dir = out_dir if out_dir is not None else default_run_dir("confusion-matrix")
    png, csv_path = out_dir / "confusion_matrix.png", out_dir / "confusion_matrix.csv"
    ensure_new(png, force)
    ensure_new(csv_path, force)
    res = C.run_confusion_matrix(results, ann, score_thr, tp_iou_thr, nms_iou_thr)
    classes, cm = res["classes"], res["matrix"]
    _warn_if_unrelated(cm, res)
    atomic_write_text(csv_path, C.matrix_csv(cm, classes))
    C.plot_matrix(cm, classes, png)
    if json_:
        print_json({**res, "matrix": cm.tolist(), "csv": str(csv_path), "png": str(png),
                    "per_class": {k: {m: (None if isinstance(v, float) and math.isnan(v) else v) for m, v in row.items()}
                                  for k, row in res["per_class"].items()}})
        return
    if show:
        table = Table(title="confusion matrix (rows: ground truth, columns: predicted)")
        names = classes + ["background"]
        table.add_column("gt \\ pred")
        for name in names:
            table.add_column(name, justify="right")
        for name, row in zip(names, cm):
            table.add_row(name, *[str(int(v)) for v in row])
        out.print(table)
    table = Table(title=f"per-class precision / recall (score >= {score_thr}, IoU >= {tp_iou_thr})")
    for col in ("class", "precision", "recall", "TP", "detections", "ground truth"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, row in res["per_class"].items():
        table.add_row(name, _pct(row["precision"]), _pct(row["recall"]), str(row["tp"]), str(row["detections"]),
                      str(row["ground_truth"]))
    out.print(table)
    out.print(f"saved {csv_path} and {png}", markup=False, highlight=False)


def _warn_if_unrelated(cm, res: dict) -> None:
    """No detection matching any ground truth usually means results of other images."""
    n = len(res["classes"])
    detections, matched = int(cm[:, :n].sum()), int(cm[:n, :n].sum())
    if detections and not matched:
        err.print(f"warning: none of the {detections} detections overlaps a ground-truth box at IoU >= "
                  f"{res['tp_iou_thr']}: are the results from the images of this annotation file?", markup=False, highlight=False)


def _pct(v: float) -> str:
    return "-" if math.isnan(v) else f"{100 * v:.1f}%"


def register(app: typer.Typer) -> None:
    app.command("confusion-matrix")(confusion_matrix)
