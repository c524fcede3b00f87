"""`det fuse-results`: weighted boxes fusion of several models' COCO results, evaluated."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, in_range, out, print_json
from det.core.fileio import atomic_write_json, ensure_new


def fuse_results(
    preds: list[Path] = typer.Argument(..., help="COCO results JSON files, one per model."),
    ann: Path = typer.Option(..., "--ann", help="COCO ground-truth JSON (image sizes and evaluation)."),
    weights: Optional[list[float]] = typer.Option(None, "--fusion-weights", callback=in_range(0), help="One fusion weight per results file (repeat)."),
    fusion_iou_thr: float = typer.Option(0.55, "--fusion-iou-thr", callback=in_range(0, 1), help="IoU above which boxes are fused."),
    skip_box_thr: float = typer.Option(0.0, "--skip-box-thr", callback=in_range(0, 1), help="Drop boxes scoring below this before fusing."),
    conf_type: str = typer.Option("avg", "--conf-type", help="avg, max, box_and_model_avg or absent_model_aware_avg."),
    eval_single: bool = typer.Option(False, "--eval-single", help="Also evaluate each input."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the fused COCO results here."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Fuse detections of several models per image (weighted boxes fusion) and evaluate them.

    Example: det fuse-results a.json b.json c.json --ann instances_val2017.json --fusion-weights 1 --fusion-weights 2 --fusion-weights 1 --eval-single --out fused.json
    """
    from det.core.analysis.fusion import run_fusion

    if out_file is not None:
        ensure_new(out_file, force)
    preds, weights = _greedy(preds, weights)
    res = run_fusion([str(p) for p in preds], str(ann), weights, fusion_iou_thr, skip_box_thr, conf_type, eval_single)
    if out_file is not None:
        atomic_write_json(out_file, res["fused"])
    if json_:
        print_json({"table": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                              for row in res["table"]], "out": str(out_file) if out_file else None,
                    "detections": len(res["fused"])})
        return
    table = Table(title=f"COCO bbox evaluation ({conf_type}, IoU {fusion_iou_thr})")
    cols = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
    table.add_column("results")
    table.add_column("detections", justify="right")
    for c in cols:
        table.add_column(c, justify="right")
    for row in res["table"]:
        table.add_row(row["name"], str(row["detections"]), *[_f(row[c]) for c in cols])
    out.print(table)
    if out_file is not None:
        out.print(f"saved {out_file}", markup=False, highlight=False)


def _f(v: float) -> str:
    return "-" if math.isnan(v) or v < 0 else f"{v:.3f}"


def _greedy(preds: list[Path], weights: Optional[list[float]]):
    """MMDetection's `--weights 1 2 1` (nargs): click gives --weights its first value and the
    rest to PRED; numbers that follow --weights on the command line go back to the weights."""
    import sys

    argv = sys.argv[1:]
    if "fuse-results" not in argv or "--weights" not in argv or not weights:
        return preds, weights
    i = argv.index("--weights") + 1
    extra = []
    while i + 1 < len(argv) and _is_number(argv[i + 1]):
        extra.append(argv[i + 1])
        i += 1
    if extra and all(Path(e) in preds for e in extra) and not any(Path(e).is_file() for e in extra):
        preds = list(preds)
        for e in extra:
            preds.remove(Path(e))
        weights = list(weights) + [float(e) for e in extra]
    return preds, weights


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    app.command("fuse-results")(fuse_results)
