"""`det infer`: detect on images, folders, globs, videos or paths from stdin."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ModelOption, SetOption, in_range, overrides, weights_or_model
from det.core.log import get_logger


def infer(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Image files, folders (recursive), globs, video files, or '-' to read paths from stdin."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="Checkpoint (.pt) written by det train; it carries its preset."),
    model: Optional[str] = ModelOption,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset file or bundled name (default: the one stored in the checkpoint)."),
    set_: Optional[list[str]] = SetOption,
    out_dir: Path = typer.Option(Path("outputs"), "--out-dir", "-o", help="Where preds/<name>.json, vis/<name>.jpg and results.json go."),
    score_thr: float = typer.Option(0.3, "--score-thr", callback=in_range(0, 1), help="Drop predictions scoring below this."),
    batch_size: int = typer.Option(1, "--batch-size", "-b", callback=in_range(1), help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", "-d", help="cpu, cuda, cuda:N or auto (CUDA when available)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Keep only these classes, comma-separated (e.g. person,car)."),
    no_vis: bool = typer.Option(False, "--no-vis", help="Do not write drawn images to OUT/vis."),
    no_pred: bool = typer.Option(False, "--no-pred", help="Do not write OUT/preds/*.json (only with --format json)."),
    fmt: str = typer.Option("json", "--format", help="json: OUT/preds/<name>.json; jsonl: one JSON object per image on stdout; coco: OUT/results.json (needs --ann)."),
    ann: Optional[Path] = typer.Option(None, "--ann", help="COCO annotation file giving image and category ids for --format coco."),
    out_video: Optional[Path] = typer.Option(None, "--out-video", help="Write the drawn frames as a video at the source fps (.mp4, .avi, ...)."),
    amp: bool = typer.Option(False, "--amp", help="bf16 autocast (CPU and CUDA)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Run the model in channels_last memory format."),
    limit: Optional[int] = typer.Option(None, "--limit", callback=in_range(1), help="Stop after N images (video frames count as images)."),
    show: bool = typer.Option(False, "--show", help="Show each drawn image in a window (needs a display)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on an unreadable image instead of skipping it with a warning."),
    slice_: Optional[int] = typer.Option(None, "--slice", callback=in_range(1), help="Sliced inference: tile size in pixels for large images."),
    overlap: float = typer.Option(0.2, "--overlap", callback=in_range(0, 1, hi_open=True), help="Tile overlap ratio for --slice."),
    merge: str = typer.Option("nms", "--merge", help="How tile predictions are merged: nms or wbf."),
    merge_iou: float = typer.Option(0.5, "--merge-iou", callback=in_range(0, 1), help="IoU threshold of the merge."),
    no_full: bool = typer.Option(False, "--no-full", help="With --slice, skip the downscaled whole-image pass."),
    track: Optional[str] = typer.Option(None, "--track", help="Track objects across frames: bytetrack, sort or ocsort."),
    out_mot: Optional[Path] = typer.Option(None, "--out-mot", help="With --track, write tracks in MOTChallenge format."),
    workers: int = typer.Option(2, "--workers", callback=in_range(1), help="Reader threads decoding images ahead of the model."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    backend: str = typer.Option("torch", "--backend", help="torch (checkpoint or TorchScript export), onnxruntime (.onnx) or openvino (.xml); exported files need their FILE.det.json."),
) -> None:
    """Detect objects in images, folders, globs, videos or a list of paths on stdin.

    Example: det infer demo_images/ --weights work_dirs/demo/latest.pt --format jsonl | jq .scores
    Example: det infer img.jpg --model rtmdet_tiny_8xb32-300e_coco
    """
    from det.core.inference.backends import load_detector
    from det.core.inference.inputs import discover
    from det.core.inference.runner import InferOptions, check_options, run_inference

    # stdout carries results only: anything else printed during the run goes to stderr.
    results_stream = sys.stdout
    opts = InferOptions(
        out_dir=out_dir, format=fmt, vis=not no_vis, pred=not no_pred, batch_size=batch_size, limit=limit,
        strict=strict, force=force, out_video=out_video, ann=ann, show=show, slice=slice_, overlap=overlap,
        merge=merge, merge_iou=merge_iou, full=not no_full, track=track, out_mot=out_mot, workers=workers,
        stdout=results_stream,
    )
    check_options(opts)
    sources = discover(inputs, stdin=sys.stdin)
    with contextlib.redirect_stdout(sys.stderr):
        detector = load_detector(
            weights_or_model(weights, model), backend=backend, device=device, preset=preset, overrides=overrides(set_),
            score_thr=score_thr,
            classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
            amp=amp, channels_last=channels_last, batch_size=batch_size,
        )
        if track and isinstance(detector.preset.get("tracker"), dict):
            opts.tracker_cfg = _tracker_cfg(detector.preset["tracker"], track)
        summary = run_inference(detector, sources, opts)
    log = get_logger()
    skipped = f", {len(summary.skipped)} skipped" if summary.skipped else ""
    log.info("%d images%s, %d instances, %.1f images/s", summary.images, skipped, summary.instances, summary.images_per_s)
    for what, where in summary.outputs.items():
        log.info("%s: %s", what, where)


def _tracker_cfg(section: dict, track: str) -> dict | None:
    """The preset's tracker section when it configures the tracker asked for."""
    from det.core.inference.runner import TRACKER_TYPES

    wanted = TRACKER_TYPES.get(track.lower())
    return dict(section) if wanted and section.get("type") == wanted else None


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
