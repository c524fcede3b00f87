"""`det test (PRESET CKPT | CKPT)`: evaluate a checkpoint on the preset's test (or val) split;
on a MOT preset (a `tracker` section and MOTChallengeDataset data), detector + tracker."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, ModelOption, SetOption, default_run_dir, fmt_metric, in_range, out, overrides, print_json


def test(
    first: Optional[str] = typer.Argument(None, metavar="PRESET_OR_CKPT", help="A checkpoint (its stored preset is used), or a preset followed by CKPT."),
    ckpt: Optional[str] = typer.Argument(None, show_default=False, help="The checkpoint when a preset is given first."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write predictions as a COCO results JSON (MOT "
                                            "preset: the folder of the per-sequence tracks, default WORK_DIR/tracks)."),
    show_dir: Optional[Path] = typer.Option(None, "--show-dir", help="Draw ground truth | predictions of every test image into this folder."),
    score_thr: float = typer.Option(0.3, "--score-thr", callback=in_range(0, 1), help="Minimum score of the boxes drawn with --show-dir."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation: merge horizontal flip and --tta-scales per image."),
    tta_scales: Optional[list[float]] = typer.Option(None, "--tta-scales", callback=in_range(0, lo_open=True), help="Extra scale factors for --tta (repeatable) (default: 1.0)."),
    format_only: bool = typer.Option(False, "--format-only", help="Only write results (--out) for a split without annotations."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", "-w", help="Where metrics.json and the reports go (MOT preset: also tracks/ and detections/) (default: runs/test/N)."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Do not draw pr_curve.png, the confusion matrix and val_predictions.jpg."),
    corrupt: Optional[str] = typer.Option(
        None, "--corrupt", metavar="NAMES", help="Robustness benchmark: also test on images corrupted by these "
        "imagecorruptions functions (comma-separated, or benchmark = the 15 standard ones, noise, blur, weather, "
        "digital, all); writes robustness.json/.csv/.png (P, mPC, rPC). Needs det[robust]."),
    severity: str = typer.Option("1-5", "--severity", help="With --corrupt: severities, a range (1-5) or a list (1,3,5)."),
    set_: Optional[list[str]] = SetOption,
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    model: Optional[str] = ModelOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Evaluate a checkpoint: prints a metrics table and writes metrics.json. On a MOT preset
    (tracker + MOTChallenge data) the detector runs per frame and the tracker per sequence:
    tracks go to WORK_DIR/tracks/<seq>.txt (or --out DIR), metrics are HOTA, CLEAR and Identity.

    Example: det test work_dirs/demo/last.pt --out results.json --show-dir work_dirs/demo/vis
    Example: det test mot/bytetrack_rtmdet_tiny_synth work_dirs/mot_synth/last.pt --out work_dirs/mot_synth/tracks
    Example: det test --model rtmdet_tiny_8xb32-300e_coco  (COCO val under data/coco)
    Example: det test work_dirs/demo/last.pt --corrupt gaussian_noise,motion_blur --severity 1-5
    """
    from det.core import dist
    from det.core.engine.runner import resolve_test_inputs
    from det.core.engine.runner import test as run_test
    from det.core.errors import DetError

    if format_only and out_file is None:
        raise DetError("--format-only needs --out FILE (where the results go)")
    plan = _robustness_plan(corrupt, severity) if corrupt is not None else None
    first, ckpt = _model_inputs(first, ckpt, model)
    cfg, ckpt_path = resolve_test_inputs(first, ckpt, overrides(set_))
    scales = tuple(tta_scales) if tta_scales else (1.0,)
    if work_dir is None and dist.is_main():
        work_dir = default_run_dir("test")
    if plan is not None:
        _robustness(cfg, ckpt_path, plan, work_dir, device, force, json_)
        return
    result = run_test(cfg, ckpt_path, work_dir=work_dir, out=out_file, show_dir=show_dir, score_thr=score_thr, tta=tta,
                      format_only=format_only, device=device, force=force, tta_scales=scales, plots=not no_plots)
    if not dist.is_main():
        return
    if json_:
        print_json(result)
        return
    metrics = result["metrics"]
    if "tracks_dir" in result:
        _print_mot(result, ckpt_path.name)
        return
    if metrics:
        table = Table(title=f"{ckpt_path.name} on {result['num_images']} images", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                table.add_row(key, fmt_metric(value))
        out.print(table)
    if result.get("per_class_ap"):
        _print_per_class(result["per_class_ap"])
    for key in ("out", "metrics_file", "show_dir"):
        if key in result:
            out.print(f"{key.replace('_', ' ')}: {result[key]}", markup=False, highlight=False)
    for key, path in (result.get("reports") or {}).items():
        out.print(f"{key.replace('_', ' ')}: {path}", markup=False, highlight=False)


def _robustness_plan(corrupt: str, severity: str) -> tuple[list[str], list[int]]:
    """(corruptions, severities) of --corrupt / --severity, checked before any work (the extra too)."""
    from det.core.evaluation.robustness import load_corrupt, parse_corruptions, parse_severities

    plan = parse_corruptions(corrupt), parse_severities(severity)
    load_corrupt()
    return plan


def _robustness(cfg: dict, ckpt_path: Path, plan: tuple[list[str], list[int]], work_dir: Path, device: str,
                force: bool, json_: bool) -> None:
    """`--corrupt`: clean and corrupted test runs, then P / mPC / rPC and the per-corruption table."""
    from functools import partial

    from det.core.engine.runner import test as run_test
    from det.core.evaluation.robustness import main_metric, robustness_test

    names, sevs = plan
    run = partial(run_test, device=device, force=force, plots=False)
    report = robustness_test(cfg, ckpt_path, names, sevs, Path(work_dir), run, force=force)
    if json_:
        print_json(report)
        return
    key = main_metric(report["P"])
    table = Table(title=f"{ckpt_path.name}: {key} under corruption (severity 0 = clean {report['P'][key]:.3f})",
                  title_justify="left")
    table.add_column("corruption")
    for s in sevs:
        table.add_column(str(s), justify="right")
    for name, per in report["table"].items():
        table.add_row(name, *(fmt_metric(per[str(s)][key]) for s in sevs))
    out.print(table)
    out.print(f"P {report['P'][key]:.4f}  mPC {report['mPC'][key]:.4f}  rPC {report['rPC'][key]:.4f}  ({key})")
    for path in report["files"].values():
        out.print(path, markup=False, highlight=False)


def _print_per_class(rows: list[dict]) -> None:
    """The per-class AP table (also in per_class_ap.csv)."""
    from det.core.analysis.reports import AP_COLUMNS

    table = Table(title="per class", title_justify="left")
    table.add_column("class")
    for name in AP_COLUMNS:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(row["class"], *[fmt_metric(row[c]) for c in AP_COLUMNS])
    out.print(table)


def _model_inputs(first: Optional[str], ckpt: Optional[str], model: Optional[str]) -> tuple[str, Optional[str]]:
    """(PRESET_OR_CKPT, CKPT) with --model NAME standing for the checkpoint."""
    from det.core.errors import DetError

    if model is None:
        if first is None:
            raise DetError("give a checkpoint, PRESET CKPT, or --model NAME (see det models list)")
        return first, ckpt
    if ckpt is not None:
        raise DetError("--model stands for CKPT: give --model NAME alone or PRESET --model NAME")
    from det.core.zoo import resolve_weights

    path = str(resolve_weights(model))
    return (path, None) if first is None else (first, path)


def _print_mot(result: dict, name: str) -> None:
    """Per-sequence rows and the combined row of the headline MOT metrics."""
    from det.cli.mot_search import TABLE_METRICS, format_metric

    metrics = result["metrics"]
    if metrics:
        table = Table(title=f"{name} + tracker on {len(result['evaluated_sequences'])} sequences "
                            f"({result['benchmark']} rules)", title_justify="left")
        table.add_column("sequence")
        for key in TABLE_METRICS:
            table.add_column(key, justify="right")
        for seq, values in result["sequences"].items():
            table.add_row(seq, *[format_metric(values[k]) for k in TABLE_METRICS])
        table.add_row("COMBINED", *[format_metric(metrics[k]) for k in TABLE_METRICS], style="bold")
        out.print(table, width=None if out.is_terminal else 250)
    if result.get("track_fps"):
        out.print(f"tracker: {result['track_fps']:.0f} frames/s", markup=False, highlight=False)
    for key in ("tracks_dir", "detections_dir", "metrics_file"):
        if key in result:
            out.print(f"{key.replace('_', ' ')}: {result[key]}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("test")(test)
