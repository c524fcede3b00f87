"""`det eval`: COCO evaluation of a results file (pycocotools), MMDetection's metric names."""
from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from det.cli.common import JsonOption, fmt_metric, out, print_json
from det.core.evaluation.coco import IOU_TYPES, coco_evaluate, load_coco_gt, load_coco_results


def _f(v: float) -> str:
    return fmt_metric(v)


def eval_(
    results: Path = typer.Argument(..., help="COCO results JSON (image_id, category_id, score, bbox or segmentation)."),
    ann: Path = typer.Option(..., "--ann", help="COCO ground-truth JSON."),
    metric: str = typer.Option("bbox", "--metric", help="bbox, segm or proposal."),
    classwise: bool = typer.Option(False, "--classwise", help="Also report AP per class."),
    json_: bool = JsonOption,
) -> None:
    """Evaluate COCO results against COCO annotations (mAP, mAP_50, ..., or AR for proposals).

    Example: det eval results.json --ann data/coco/annotations/instances_val2017.json --classwise
    """
    if metric not in IOU_TYPES:
        from det.core.errors import DetError, did_you_mean

        raise DetError(f"--metric '{metric}' is not supported{did_you_mean(metric, IOU_TYPES)}")
    coco = load_coco_gt(ann)
    dets = load_coco_results(results, coco, metric)
    res = coco_evaluate(coco, dets, metric, classwise=classwise)
    if json_:
        print_json(_no_nan(res))
        return
    table = Table(title=f"{results.name}: {metric} ({len(dets)} detections, {len(coco.getImgIds())} images)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in res.items():
        if isinstance(value, float):
            table.add_row(key, _f(value))
    out.print(table)
    if classwise and "classwise_detail" in res:
        table = Table(title="per class")
        cols = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
        table.add_column("class")
        for c in cols:
            table.add_column(c, justify="right")
        for name, row in res["classwise_detail"].items():
            table.add_row(name, *[_f(row[c]) for c in cols])
        out.print(table)


def _no_nan(obj):
    """NaN (a class without ground truth) becomes null so the output stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    return None if isinstance(obj, float) and math.isnan(obj) else obj


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
