"""`det mot-search`: grid search of tracker parameters on detections computed once."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, SetOption, err, in_range, out, overrides, print_json
from det.core.config import load_preset
from det.core.errors import ConfigError, DetError
from det.core.fileio import atomic_write_json, atomic_write_text, ensure_new

TABLE_METRICS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


def mot_search(
    preset: str = typer.Argument(..., help="A tracker preset (e.g. trackers/bytetrack) or a preset file with a `tracker` section."),
    data: Optional[Path] = typer.Option(None, "--data", help="MOTChallenge folder of sequences (each with gt/gt.txt)."),
    detections: Optional[Path] = typer.Option(None, "--detections", help="Detection cache folder of <seq>.txt files "
                                              "(det.txt format); missing ones are computed with --weights and written there."),
    public: bool = typer.Option(False, "--public", help="Use each sequence's det/det.txt (public detections)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector checkpoint run once per sequence "
                                           "(det.core.apis.Detector) when detections are not cached."),
    device: str = typer.Option("auto", "--device", help="Device for --weights: auto, cpu, cuda or cuda:N."),
    det_score_thr: float = typer.Option(0.05, "--det-score-thr", callback=in_range(0, 1), help="Keep detector boxes above this score (low-score "
                                        "boxes matter to ByteTrack)."),
    classes: Optional[list[str]] = typer.Option(None, "--classes", help="Keep only these detector classes (repeatable)."),
    set_: Optional[list[str]] = SetOption,
    metric: str = typer.Option("HOTA", "--metric", help="Metric that ranks the combinations (HOTA, MOTA, IDF1, ...)."),
    jobs: int = typer.Option(1, "--jobs", "-j", callback=in_range(1), help="Worker processes running combinations in parallel."),
    benchmark: str = typer.Option("MOT17", "--benchmark", help="Evaluation rules: MOT17, MOT20 or MOT15."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write all rows to this .csv or .json file."),
    top: int = typer.Option(20, "--top", callback=in_range(1), help="Rows shown in the table (all go to --out)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the metric over the grid (.png or .pdf): "
                                        "a heatmap for two parameters, a line for one."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Search tracker parameters: list-valued keys of the preset's `tracker` section (or of
    --set values) form a grid; detections come once per sequence, each combination runs only
    the tracker and the MOT metrics, in parallel.

    Example: det mot-search trackers/bytetrack --data data/mot --public --set tracker.match_iou_thr=[0.1,0.3,0.5] --set tracker.obj_score_thr=[0.5,0.6] --jobs 2 --out results.csv --plot search.png
    """
    from det.core.tracking.search import best_set_line, detector_fn, prepare_sequences, search

    cfg = load_preset(preset, overrides(set_))
    if "tracker" not in cfg or not cfg["tracker"]:
        raise ConfigError(f"{preset}: no `tracker` section (use a preset under trackers/)")
    if benchmark not in ("MOT17", "MOT20", "MOT15"):
        raise DetError(f"--benchmark: '{benchmark}' is not one of MOT17, MOT20, MOT15")
    if data is None:
        raise DetError("--data: required (a folder of MOTChallenge sequences)")
    if public and (detections is not None or weights is not None):
        raise DetError("--public: cannot be combined with --detections or --weights")
    if jobs < 1:
        raise DetError("--jobs: must be >= 1")
    if out_file is not None:
        if out_file.suffix.lower() not in (".csv", ".json"):
            raise DetError(f"--out: {out_file} must end with .csv or .json")
        ensure_new(out_file, force)
    if plot is not None:
        if plot.suffix.lower() not in (".png", ".pdf"):
            raise DetError(f"--plot: {plot} must end with .png or .pdf")
        ensure_new(plot, force)
    detect = None
    if weights is not None:
        from det.core.apis import Detector

        detect = detector_fn(Detector.from_checkpoint(weights, device=device, score_thr=det_score_thr), classes)
    sequences = prepare_sequences(data, public=public, cache=detections, detect=detect)
    names, rows = search(cfg["tracker"], sequences, metric=metric, jobs=jobs, benchmark=benchmark)
    best = best_set_line(names, rows[0]) if names else ""
    if out_file is not None:
        _write_rows(out_file, names, rows, metric, best)
    if plot is not None:
        from det.core.tracking.plot import plot_search

        plot_search(names, rows, metric, plot)
    if json_:
        print_json({"metric": metric, "params": names, "rows": rows, "best": rows[0], "best_set": best,
                    "out": str(out_file) if out_file else None, "plot": str(plot) if plot else None})
        return
    _print_table(names, rows[:top], metric, len(rows))
    if names:
        out.print(f"best ({metric} {format_metric(rows[0][metric])}): {best}", markup=False, highlight=False)
    else:
        err.print("note: no list-valued tracker parameter; evaluated the preset as is", markup=False, highlight=False)
    if out_file is not None:
        err.print(f"wrote {out_file} ({len(rows)} rows)", markup=False, highlight=False)
    if plot is not None:
        err.print(f"wrote {plot}", markup=False, highlight=False)


def format_metric(value: object) -> str:
    """det's one console convention (3 decimals; see det.cli.common.fmt_metric)."""
    from det.cli.common import fmt_metric

    return fmt_metric(value)


def _print_table(names: list[str], rows: list[dict], metric: str, total: int) -> None:
    table = Table(title=f"{total} combinations, sorted by {metric}")
    cols = [*names, *dict.fromkeys((metric, *TABLE_METRICS))]
    for c in cols:
        name = c.removeprefix("tracker.")
        table.add_column(name, justify="right", style="bold" if c == metric else None, min_width=len(name))
    for r in rows:
        table.add_row(*[str(r[c]) if c in names else format_metric(r[c]) for c in cols])
    # never truncate numbers: tables piped to a file get the width they need
    out.print(table, width=None if out.is_terminal else 250)


def _write_rows(path: Path, names: list[str], rows: list[dict], metric: str, best: str) -> None:
    if path.suffix.lower() == ".json":
        atomic_write_json(path, {"metric": metric, "params": names, "best_set": best, "rows": rows}, indent=1)
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def register(app: typer.Typer) -> None:
    app.command("mot-search")(mot_search)
