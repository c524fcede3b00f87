"""`det browse PRESET`: draw a preset's ground truth (after its pipeline or raw) or print
dataset statistics."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from det.cli.common import JsonOption, SetOption, out, overrides, print_json


def browse(
    preset: str = typer.Argument(..., help="A preset file or a bundled preset name."),
    split: str = typer.Option("train", "--split", help="Which loader: train, val or test."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Write one PNG per sample here."),
    limit: int = typer.Option(16, "--limit", "-n", min=1, help="Number of samples to draw."),
    raw: bool = typer.Option(False, "--raw", help="Draw on the raw images (no pipeline)."),
    grid: bool = typer.Option(False, "--grid", help="Also write an overview grid (grid.png)."),
    show: bool = typer.Option(False, "--show", help="Open a window per sample (needs a display)."),
    stats: bool = typer.Option(False, "--stats", help="Print per-class counts and box-size statistics instead."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random transforms."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite images already in --out-dir."),
    set_: Optional[list[str]] = SetOption,
    json_: bool = JsonOption,
) -> None:
    """Draw ground-truth boxes, masks and class names of a preset's data, after its pipeline
    (or raw with --raw), one image per sample; --stats summarises the annotations.

    Example: det browse demo/rtmdet_tiny --split train --out-dir work_dirs/browse --limit 8 --grid
    """
    from det.core.config import load_preset
    from det.core.data.browse import build_browse_dataset, dataset_stats, render_samples, write_image
    from det.core.errors import DetError
    from det.core.log import make_progress

    cfg = load_preset(preset, overrides(set_))
    if show and not stats:
        _check_display()
    if not stats and out_dir is None and not show:
        raise DetError("nothing to do: give --out-dir DIR (and/or --show), or --stats")
    dataset = build_browse_dataset(cfg, split, raw or stats)
    if stats:
        result = dataset_stats(dataset)
        if json_:
            print_json({"preset": preset, "split": split, **result})
        else:
            _print_stats(result)
        return

    written, drawn = [], []
    total = min(limit, len(dataset))
    with make_progress() as progress:
        task = progress.add_task(f"browse {split}", total=total, info="")
        for i, path, img in render_samples(dataset, limit, seed):
            if out_dir is not None:
                target = out_dir / f"{i:05d}_{Path(path).stem}.png"
                if target.exists() and not force:
                    raise DetError(f"{target}: already exists (use --force to overwrite)")
                write_image(target, img)
                written.append(str(target))
            if grid:
                drawn.append(img)
            if show:
                _show(img, path)
            progress.advance(task)
    grid_path = None
    if grid and out_dir is not None:
        from det.core.vis import make_grid

        grid_path = out_dir / "grid.png"
        write_image(grid_path, make_grid(drawn, cell=256))
    if json_:
        print_json({"preset": preset, "split": split, "images": written, "grid": str(grid_path) if grid_path else None})
    else:
        out.print(f"drew {total} {split} samples" + (f" into {out_dir}" if out_dir else ""), markup=False, highlight=False)
        if grid_path:
            out.print(f"grid: {grid_path}", markup=False, highlight=False)


def _check_display() -> None:
    from det.core.errors import DetError

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DetError("--show needs a display (DISPLAY is not set); use --out-dir DIR to write images instead")


def _show(img, title: str) -> None:
    import cv2

    from det.core.errors import DetError

    try:
        cv2.imshow("det browse", img)
        cv2.setWindowTitle("det browse", title)
        key = cv2.waitKey(0)
    except cv2.error:
        raise DetError("--show: this OpenCV build has no GUI support (opencv-python-headless); "
                       "use --out-dir DIR to write images instead") from None
    if key in (27, ord("q")):
        raise typer.Exit()


def _print_stats(result: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{result['num_images']} images, {result['num_instances']} instances "
                        f"({result['images_without_instances']} images without instances)")
    for col in ("class", "instances", "images", "ignored", "min sqrt(area)", "median", "max"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, row in result["per_class"].items():
        s = row["sqrt_area"]
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        table.add_row(name, str(row["instances"]), str(row["images"]), str(row["ignored"]), fmt(s["min"]),
                      fmt(s["median"]), fmt(s["max"]))
    out.print(table)
    sr = result["size_ranges"]
    bw, bh = result["box_width"], result["box_height"]
    if bw["min"] is not None:
        out.print(f"box width  min/median/max: {bw['min']:.1f} / {bw['median']:.1f} / {bw['max']:.1f}", markup=False, highlight=False)
        out.print(f"box height min/median/max: {bh['min']:.1f} / {bh['median']:.1f} / {bh['max']:.1f}", markup=False, highlight=False)
    out.print(f"COCO size ranges: small {sr['small']}, medium {sr['medium']}, large {sr['large']}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("browse")(browse)
