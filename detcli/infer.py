"""`det infer`: detect on images, folders, globs, videos or paths from stdin."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ModelOption, SetOption, default_run_dir, in_range, overrides, print_json, weights_or_model
from det.core.log import get_logger

# Options whose help is long, kept out of the signature.
InputsArgument = typer.Argument(..., metavar="INPUT", help="Image files, folders (recursive), globs, video files, "
    "a camera index (0), rtsp:// or http(s):// video and image URLs, or '-' to read paths from stdin.")
OutDirOption = typer.Option(None, "--out-dir", "-o", help="Where preds/<name>.json, vis/<name>.jpg and results.json go "
    "(default: runs/infer/N; with --format jsonl nothing is written unless --out-dir or --save-vis).")
ScoreThrOption = typer.Option(None, "--score-thr", show_default=False, callback=in_range(0, 1),
    help="Drop predictions scoring below this (default: infer.score_thr, 0.3; with --track, the "
    "tracker's lowest score threshold when lower).")
BatchSizeOption = typer.Option(None, "--batch-size", "-b", callback=in_range(1), show_default=False,
    help="Images per forward pass (default: infer.batch_size, 1).")
FormatOption = typer.Option(None, "--format", show_default=False, help="json: OUT/preds/<name>.json; jsonl: one JSON object "
    "per image on stdout; coco: OUT/results.json (needs --ann) (default: infer.format, json).")
OverlapOption = typer.Option(None, "--overlap", callback=in_range(0, 1, hi_open=True), show_default=False,
    help="Tile overlap ratio for --slice (default: infer.overlap, 0.2).")
MergeOption = typer.Option(None, "--merge", show_default=False,
    help="How tile predictions are merged: nms or wbf (default: infer.merge, nms).")
MergeIouOption = typer.Option(None, "--merge-iou", callback=in_range(0, 1), show_default=False,
    help="IoU threshold of the merge (default: infer.merge_iou, 0.5).")
TrackOption = typer.Option(None, "--track", help="Track objects across frames: bytetrack, sort, ocsort or a tracker "
    "preset (trackers/bytetrack, my_tracker.yaml); tune with --set tracker.KEY=V.")
BackendOption = typer.Option("torch", "--backend", help="torch (checkpoint or TorchScript export), onnxruntime (.onnx) or openvino (.xml); exported files need their FILE.det.json.")


def infer(
    inputs: list[str] = InputsArgument,
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint (.pt) written by det train; it carries its preset."),
    model: Optional[str] = ModelOption,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset file or bundled name (default: the one stored in the checkpoint)."),
    set_: Optional[list[str]] = SetOption,
    out_dir: Optional[Path] = OutDirOption,
    score_thr: Optional[float] = ScoreThrOption,
    batch_size: Optional[int] = BatchSizeOption,
    device: str = typer.Option("auto", "--device", "-d", help="cpu, cuda, cuda:N or auto (CUDA when available)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Keep only these classes, comma-separated (e.g. person,car)."),
    no_vis: bool = typer.Option(False, "--no-vis", help="Do not write drawn images to OUT/vis."),
    save_vis: bool = typer.Option(False, "--save-vis", help="Write drawn images to OUT/vis also with --format jsonl."),
    no_pred: bool = typer.Option(False, "--no-pred", help="Do not write OUT/preds/*.json (only with --format json)."),
    fmt: Optional[str] = FormatOption,
    ann: Optional[Path] = typer.Option(None, "--ann", help="COCO annotation file giving image and category ids for --format coco."),
    out_video: Optional[Path] = typer.Option(None, "--out-video", help="Write the drawn frames as a video at the source fps (.mp4, .avi, ...)."),
    amp: bool = typer.Option(False, "--amp", help="bf16 autocast (CPU and CUDA)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Run the model in channels_last memory format."),
    limit: Optional[int] = typer.Option(None, "--limit", callback=in_range(1), help="Stop after N images (video frames count as images)."),
    show: bool = typer.Option(False, "--show", help="Show each drawn image in a window (needs a display)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on an unreadable image instead of skipping it with a warning."),
    slice_: Optional[int] = typer.Option(None, "--slice", callback=in_range(1), help="Sliced inference: tile size in pixels for large images."),
    overlap: Optional[float] = OverlapOption,
    merge: Optional[str] = MergeOption,
    merge_iou: Optional[float] = MergeIouOption,
    no_full: bool = typer.Option(False, "--no-full", help="With --slice, skip the downscaled whole-image pass."),
    track: Optional[str] = TrackOption,
    out_mot: Optional[Path] = typer.Option(None, "--out-mot", help="With --track, write tracks in MOTChallenge format."),
    workers: int = typer.Option(2, "--workers", callback=in_range(1), help="Reader threads decoding images ahead of the model."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    backend: str = BackendOption,
    json_: bool = typer.Option(False, "--json", help="Print the run summary (counts, timing, output paths) as JSON on stdout."),
) -> None:
    """Detect objects in images, folders, globs, videos or a list of paths on stdin.

    Defaults come from the preset's `infer:` section (score_thr, batch_size, classes, format,
    vis, pred, slice, overlap, merge, merge_iou, full); `--set infer.KEY=V` changes them and
    explicit options win.

    Example: det infer data/shapes/val --weights runs/train/1/last.pt --format jsonl | jq .scores

    Example: det infer img.jpg --model rtmdet_tiny_8xb32-300e_coco --set infer.score_thr=0.5

    Example: det infer video.mp4 --weights last.pt --track bytetrack --set tracker.init_track_thr=0.5 --out-mot tracks.txt
    """
    from det.core.apis.backends import load_detector
    from det.core.inference.inputs import discover
    from det.core.inference.runner import run_inference
    from det.core.inference.settings import INFER_DEFAULTS, resolve

    weights = weights_or_model(weights, model)  # --weights CKPT, or --model NAME from the model index
    detector_sets, tracker_sets, infer_sets = _split_sets(overrides(set_))
    explicit = {"score_thr": score_thr, "batch_size": batch_size, "format": fmt, "slice": slice_, "overlap": overlap,
                "merge": merge, "merge_iou": merge_iou, "vis": False if no_vis else None,
                "pred": False if no_pred else None, "full": False if no_full else None,
                "classes": [c.strip() for c in classes.split(",") if c.strip()] if classes else None}
    run_opts = dict(out_dir=out_dir, limit=limit, strict=strict, force=force, out_video=out_video, ann=ann, show=show,
                    track=track, out_mot=out_mot, workers=workers, stdout=sys.stdout)  # before stdout goes to stderr
    _check_json_flag(json_, fmt)
    _options(resolve(INFER_DEFAULTS, explicit), save_vis, **{**run_opts, "track": None, "out_mot": None})  # fail early
    sources = discover(inputs, stdin=sys.stdin)
    # stdout carries results only: anything else printed during the run goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        detector = load_detector(weights, backend=backend, device=device, preset=preset, overrides=detector_sets,
                                 amp=amp, channels_last=channels_last)
        settings = _settings(detector.preset, infer_sets, explicit)
        _check_json_flag(json_, settings["format"])
        tracker_cfg, thr = _tracker(track, detector.preset, tracker_sets, settings["score_thr"], score_thr is not None)
        detector.configure(score_thr=thr, classes=settings["classes"], batch_size=settings["batch_size"])
        opts = _options(settings, save_vis, tracker_cfg=tracker_cfg, **run_opts)
        if out_dir is None and _writes(opts):  # default outputs only once inputs and model are known to be good
            opts.out_dir = default_run_dir("infer")
        summary = run_inference(detector, sources, opts)
    _report(summary, opts, json_)


def _report(summary: "InferSummary", opts: "InferOptions", json_: bool) -> None:
    if json_:
        print_json({**summary.to_dict(), "tracker": opts.tracker_cfg})
    log = get_logger()
    skipped = f", {len(summary.skipped)} skipped" if summary.skipped else ""
    log.info("%d images%s, %d instances, %.1f images/s", summary.images, skipped, summary.instances, summary.images_per_s)
    for what, where in summary.outputs.items():
        log.info("%s: %s", what, where)


def _split_sets(sets: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(--set for the detector preset, tracker.*, infer.*)."""
    from det.core.inference.tracker_cfg import split_tracker_sets

    detector_sets, tracker_sets = split_tracker_sets(sets)
    infer_sets = [s for s in detector_sets if s.split("=", 1)[0].strip().startswith("infer.")]
    return [s for s in detector_sets if s not in infer_sets], tracker_sets, infer_sets


def _check_json_flag(json_: bool, fmt: Optional[str]) -> None:
    from det.core.errors import DetError

    if json_ and fmt == "jsonl":
        raise DetError("--json: conflicts with --format jsonl (stdout carries the records)")


def _settings(preset: dict, infer_sets: list[str], explicit: dict) -> dict:
    """Built-in defaults < the preset's infer: section < --set infer.KEY=V < explicit options."""
    from det.core.config import apply_overrides
    from det.core.inference.settings import infer_settings, resolve

    section = apply_overrides({"infer": dict(preset.get("infer") or {})}, infer_sets)
    return resolve(infer_settings(section), explicit)


def _options(settings: dict, save_vis: bool, out_dir: Optional[Path], **kwargs) -> "InferOptions":
    """The runner's options from the resolved settings, checked."""
    from det.core.inference.runner import InferOptions, check_options

    fmt = settings["format"]
    # jsonl is for pipelines: drawn images only when asked for (--save-vis or --out-dir)
    vis = save_vis or (settings["vis"] and (fmt != "jsonl" or out_dir is not None))
    opts = InferOptions(out_dir=out_dir or Path("."), format=fmt, vis=vis, pred=settings["pred"],
                        batch_size=settings["batch_size"], slice=settings["slice"], overlap=settings["overlap"],
                        merge=settings["merge"], merge_iou=settings["merge_iou"], full=settings["full"], **kwargs)
    check_options(opts)
    return opts


def _writes(opts: "InferOptions") -> bool:
    """Whether the run writes files under its output folder."""
    return opts.vis or opts.format == "coco" or (opts.format == "json" and opts.pred)


def _tracker(track: Optional[str], preset: dict, sets: list[str], score_thr: float,
             explicit_thr: bool) -> tuple[Optional[dict], float]:
    """(the tracker section for --track, or None; the detector's score threshold)."""
    from det.core.errors import DetError
    from det.core.inference.tracker_cfg import detection_floor, resolve_tracker

    if not track:
        if sets:
            raise DetError(f"--set {sets[0]}: tracker keys need --track")
        return None, score_thr
    section = resolve_tracker(track, preset.get("tracker"), sets)
    # unless --score-thr says otherwise, the tracker decides which low-score boxes it uses
    return section, score_thr if explicit_thr else detection_floor(section, score_thr)


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
