"""`det infer`: detect on images, folders, globs, videos or paths from stdin."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ModelOption, SetOption, default_run_dir, in_range, overrides, print_json, weights_or_model
from det.core.log import get_logger


DEFAULT_SCORE_THR = 0.3


def infer(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Image files, folders (recursive), globs, video files, "
                                       "a camera index (0), rtsp:// or http(s):// video and image URLs, or '-' to read paths from stdin."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint (.pt) written by det train; it carries its preset."),
    model: Optional[str] = ModelOption,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset file or bundled name (default: the one stored in the checkpoint)."),
    set_: Optional[list[str]] = SetOption,
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Where preds/<name>.json, vis/<name>.jpg and results.json go "
                                           "(default: runs/infer/N; with --format jsonl nothing is written unless --out-dir or --save-vis)."),
    score_thr: Optional[float] = typer.Option(None, "--score-thr", show_default=False, callback=in_range(0, 1),
                                              help="Drop predictions scoring below this [default: 0.3; with --track, the "
                                              "tracker's lowest score threshold when lower]."),
    batch_size: int = typer.Option(1, "--batch-size", "-b", callback=in_range(1), help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", "-d", help="cpu, cuda, cuda:N or auto (CUDA when available)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Keep only these classes, comma-separated (e.g. person,car)."),
    no_vis: bool = typer.Option(False, "--no-vis", help="Do not write drawn images to OUT/vis."),
    save_vis: bool = typer.Option(False, "--save-vis", help="Write drawn images to OUT/vis also with --format jsonl."),
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
    track: Optional[str] = typer.Option(None, "--track", help="Track objects across frames: bytetrack, sort, ocsort or a tracker "
                                        "preset (trackers/bytetrack, my_tracker.yaml); tune with --set tracker.KEY=V."),
    out_mot: Optional[Path] = typer.Option(None, "--out-mot", help="With --track, write tracks in MOTChallenge format."),
    workers: int = typer.Option(2, "--workers", callback=in_range(1), help="Reader threads decoding images ahead of the model."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    backend: str = typer.Option("torch", "--backend", help="torch (checkpoint or TorchScript export), onnxruntime (.onnx) or openvino (.xml); exported files need their FILE.det.json."),
    json_: bool = typer.Option(False, "--json", help="Print the run summary (counts, timing, output paths) as JSON on stdout."),
) -> None:
    """Detect objects in images, folders, globs, videos or a list of paths on stdin.

    Example: det infer data/shapes/val --weights runs/train/1/last.pt --format jsonl | jq .scores

    Example: det infer img.jpg --model rtmdet_tiny_8xb32-300e_coco

    Example: det infer video.mp4 --weights last.pt --track bytetrack --set tracker.init_track_thr=0.5 --out-mot tracks.txt
    """
    from det.core.inference.backends import load_detector
    from det.core.errors import DetError
    from det.core.inference.inputs import discover
    from det.core.inference.runner import InferOptions, check_options, run_inference
    from det.core.inference.tracker_cfg import split_tracker_sets

    weights = weights_or_model(weights, model)  # --weights CKPT, or --model NAME from the model index
    if json_ and fmt == "jsonl":
        raise DetError("--json: conflicts with --format jsonl (stdout carries the records)")
    detector_sets, tracker_sets = split_tracker_sets(overrides(set_))
    # jsonl is for pipelines: drawn images only when asked for (--save-vis or --out-dir)
    vis = save_vis or (not no_vis and (fmt != "jsonl" or out_dir is not None))
    writes = vis or fmt != "jsonl" and not (fmt == "json" and no_pred)
    # stdout carries results only: anything else printed during the run goes to stderr.
    opts = InferOptions(
        out_dir=out_dir or Path("."), format=fmt, vis=vis, pred=not no_pred, batch_size=batch_size, limit=limit,
        strict=strict, force=force, out_video=out_video, ann=ann, show=show, slice=slice_, overlap=overlap,
        merge=merge, merge_iou=merge_iou, full=not no_full, track=track, out_mot=out_mot, workers=workers,
        stdout=sys.stdout,
    )
    opts.tracker_cfg, score_thr = _tracker(track, preset, weights, tracker_sets, score_thr)
    check_options(opts)
    sources = discover(inputs, stdin=sys.stdin)
    if out_dir is None and writes:  # default outputs only once the inputs are known to be good
        opts.out_dir = default_run_dir("infer")
    with contextlib.redirect_stdout(sys.stderr):
        detector = load_detector(
            weights, backend=backend, device=device, preset=preset, overrides=detector_sets, score_thr=score_thr,
            classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
            amp=amp, channels_last=channels_last, batch_size=batch_size,
        )
        summary = run_inference(detector, sources, opts)
    if json_:
        print_json({**summary.to_dict(), "tracker": opts.tracker_cfg})
    log = get_logger()
    skipped = f", {len(summary.skipped)} skipped" if summary.skipped else ""
    log.info("%d images%s, %d instances, %.1f images/s", summary.images, skipped, summary.instances, summary.images_per_s)
    for what, where in summary.outputs.items():
        log.info("%s: %s", what, where)


def _tracker(track: Optional[str], preset: Optional[str], weights: Path, sets: list[str],
             score_thr: Optional[float]) -> tuple[Optional[dict], float]:
    """(the tracker section for --track, or None; the detector's score threshold)."""
    from det.core.errors import DetError
    from det.core.inference.tracker_cfg import detection_floor, resolve_tracker

    if not track:
        if sets:
            raise DetError(f"--set {sets[0]}: tracker keys need --track")
        return None, DEFAULT_SCORE_THR if score_thr is None else score_thr
    from det.core.config import load_preset
    from det.core.fileio import load_checkpoint

    stored = load_preset(preset) if preset else load_checkpoint(weights).get("preset")
    section = resolve_tracker(track, (stored if isinstance(stored, dict) else {}).get("tracker"), sets)
    # unless --score-thr says otherwise, the tracker decides which low-score boxes it uses
    return section, detection_floor(section, DEFAULT_SCORE_THR) if score_thr is None else score_thr


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
