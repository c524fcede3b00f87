"""`det analyze-results`: per-image AP, the best and worst images drawn."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, default_run_dir, in_range, out, print_json
from det.core.fileio import ensure_new


def analyze_results(
    results: Path = typer.Argument(..., help="COCO results JSON (bbox)."),
    ann: Path = typer.Option(..., "--ann", help="COCO ground-truth JSON."),
    img_dir: Path = typer.Option(..., "--img-dir", help="Folder holding the images named in --ann."),
    topk: int = typer.Option(20, "--topk", callback=in_range(0), help="How many best and worst images to draw."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Output folder (good/, bad/, per_image_ap.json) [default: runs/analyze-results/N]."),
    show_score_thr: float = typer.Option(0.3, "--show-score-thr", callback=in_range(0, 1), help="Draw predictions scoring at least this."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Rank images by their own COCO AP and draw the top-k best and worst (ground truth | predictions).

    Example: det analyze-results results.json --ann data/coco/annotations/instances_val2017.json --img-dir data/coco/val2017 --topk 20
    """
    from det.core.analysis.per_image import analyze_results as run

    out_dir = out_dir if out_dir is not None else default_run_dir("analyze-results")
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


def register(app: typer.Typer) -> None:
    app.command("analyze-results")(analyze_results)
