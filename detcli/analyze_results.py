"""`det analyze-results`: per-image AP, the best and worst images drawn; `--errors`: the COCO error analysis."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, default_run_dir, in_range, out, print_json
from det.core.errors import DetError
from det.core.fileio import ensure_new


def analyze_results(
    results: Path = typer.Argument(..., help="COCO results JSON (bbox)."),
    ann: Path = typer.Option(..., "--ann", help="COCO ground-truth JSON."),
    img_dir: Optional[Path] = typer.Option(None, "--img-dir", help="Folder holding the images named in --ann (not with --errors)."),
    topk: int = typer.Option(20, "--topk", callback=in_range(0), help="How many best and worst images to draw."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Output folder (good/, bad/, per_image_ap.json) [default: runs/analyze-results/N]."),
    show_score_thr: float = typer.Option(0.3, "--show-score-thr", callback=in_range(0, 1), help="Draw predictions scoring at least this."),
    errors: bool = typer.Option(False, "--errors", help="COCO error analysis instead: C75, C50, Loc, Sim, Oth, BG, FN "
                                "PR curves per class and overall (PNGs) and a table (errors.csv, errors.json)."),
    metric: str = typer.Option("bbox", "--metric", help="With --errors: bbox or segm."),
    areas: Optional[list[float]] = typer.Option(None, "--areas", help="With --errors: 3 area bounds (small, medium, "
                                                "large upper limits; default 32^2 96^2 1e10). Repeat 3 times."),
    no_plots: bool = typer.Option(False, "--no-plots", help="With --errors: write only the table."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Rank images by their own COCO AP and draw the top-k best and worst (ground truth | predictions),
    or with --errors run the COCO error analysis into OUT_DIR/<metric>/.

    Example: det analyze-results results.json --ann data/coco/annotations/instances_val2017.json --img-dir data/coco/val2017 --topk 20
    Example: det analyze-results results.json --ann instances_val2017.json --errors --out-dir work_dirs/errors
    """
    if not errors and img_dir is None:
        raise DetError("--img-dir is required (the images to draw); or pass --errors for the error analysis")
    out_dir = out_dir if out_dir is not None else default_run_dir("analyze-results")
    if errors:
        _errors(results, ann, out_dir, metric, areas, not no_plots, force, json_)
        return
    from det.core.analysis.per_image import analyze_results as run

    ensure_new(out_dir / "per_image_ap.json", force)
    res = run(results, ann, img_dir, out_dir, topk, show_score_thr)
    if json_:
        print_json(res)
        return
    for name, rows in (("best", res["best"]), ("worst", res["worst"])):
        table = Table(title=f"{name} {len(rows)} images by AP")
        table.add_column("image id")
        table.add_column("AP", justify="right")
        for row in rows:
            table.add_row(str(row["image_id"]), f"{row['ap']:.3f}")
        out.print(table)
    out.print(f"{res['images_ranked']} images ranked (mean per-image AP {res['mean_per_image_ap']:.3f}; "
              f"{res['images_without_gt']} without ground truth); drawings in {out_dir}/good and {out_dir}/bad",
              markup=False, highlight=False)


def _errors(results: Path, ann: Path, out_dir: Path, metric: str, areas, plots: bool, force: bool, json_: bool) -> None:
    from det.core.analysis.coco_errors import ERROR_TYPES, analyze_errors

    ensure_new(out_dir / metric / "errors.csv", force)
    res = analyze_errors(results, ann, out_dir, metric, areas or None, plots)
    if json_:
        print_json(res)
        return
    table = Table(title=f"{results.name}: {metric} error analysis (AP per error type, 100 detections)")
    for col in ("class", "area", *ERROR_TYPES):
        table.add_column(col, justify="left" if col in ("class", "area") else "right")
    for row in res["rows"]:
        if row["class"] == "all":
            table.add_row(row["class"], row["area"], *[f"{row[t]:.3f}" for t in ERROR_TYPES])
    out.print(table)
    out.print(f"per-class rows in {res['table']}; {len(res['plots'])} plots in {out_dir / metric}", markup=False,
              highlight=False)


def register(app: typer.Typer) -> None:
    app.command("analyze-results")(analyze_results)
