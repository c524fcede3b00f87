"""`det infer` as a function: sources in, predictions written, a summary out.

The reader thread decodes and runs the test pipeline ahead of the model; the main thread
batches, runs the detector, and hands each prediction to the writers in input order (which
tracking and video writing need).
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import cv2
import numpy as np

from det.core.errors import DetError
from det.core.fileio import ensure_new
from det.core.inference.inputs import Source
from det.core.inference.prediction import Prediction
from det.core.inference.reader import Frame, PrefetchReader
from det.core.inference.slicing import MERGE_METHODS, slice_predict
from det.core.inference.video import VideoWriter
from det.core.inference.writers import FORMATS, CocoWriter, JsonlWriter, JsonWriter, PanopticWriter, VisWriter
from det.core.log import get_logger, make_progress


class DetectorLike(Protocol):
    """What the runner needs from `det.core.apis.Detector` (tests pass fakes)."""

    class_names: list[str]

    def preprocess(self, image: np.ndarray, img_path: str = "") -> Any: ...

    def predict_prepared(self, prepared: Sequence[Any]) -> list[Prediction]: ...

    def predict_arrays(self, images: Sequence[np.ndarray]) -> list[Prediction]: ...


@dataclass
class InferOptions:
    out_dir: str | Path = "outputs"
    format: str = "json"
    vis: bool = True
    pred: bool = True
    batch_size: int = 1
    limit: int | None = None
    strict: bool = False
    force: bool = False
    out_video: str | Path | None = None
    ann: str | Path | None = None
    show: bool = False
    slice: int | None = None
    overlap: float = 0.2
    merge: str = "nms"
    merge_iou: float = 0.5
    full: bool = True
    track: str | None = None
    tracker_cfg: dict | None = None
    out_mot: str | Path | None = None
    prefetch: int = 8
    workers: int = 2
    stdout: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class InferSummary:
    images: int = 0
    skipped: list[str] = field(default_factory=list)
    instances: int = 0
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "skipped": self.skipped, "instances": self.instances,
                "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 2), "outputs": self.outputs}


def check_options(opts: InferOptions) -> None:
    """Reject contradictory or invalid options before any work starts."""
    if opts.format not in FORMATS:
        raise DetError(f"--format: unknown format '{opts.format}' (one of: {', '.join(FORMATS)})")
    if opts.format == "coco" and opts.ann is None:
        raise DetError("--format coco: needs --ann COCO_JSON to take image and category ids from")
    if not opts.pred and opts.format != "json":
        raise DetError(f"--no-pred: conflicts with --format {opts.format} (which is the prediction output)")
    if opts.batch_size < 1:
        raise DetError(f"--batch-size: must be >= 1, got {opts.batch_size}")
    if opts.limit is not None and opts.limit < 1:
        raise DetError(f"--limit: must be >= 1, got {opts.limit}")
    if opts.merge not in MERGE_METHODS:
        raise DetError(f"--merge: unknown method '{opts.merge}' (one of: {', '.join(MERGE_METHODS)})")
    if not 0.0 <= opts.merge_iou <= 1.0:
        raise DetError(f"--merge-iou: must be in [0, 1], got {opts.merge_iou}")
    if opts.out_mot is not None and opts.track is None:
        raise DetError("--out-mot: needs --track")
    if opts.track is not None and opts.tracker_cfg is None and str(opts.track).lower() not in TRACKER_TYPES:
        raise DetError(f"--track: unknown tracker '{opts.track}' (one of: {', '.join(TRACKER_TYPES)}, or a tracker preset)")
    if opts.show:
        check_display()


def check_display() -> None:
    """--show needs a display and an OpenCV build with a GUI backend."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DetError("--show: no display available (DISPLAY is not set); use --out-dir to save drawn images instead")
    gui = [ln for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        raise DetError("--show: this OpenCV build has no GUI support (opencv-python-headless); "
                       "install opencv-python or use --out-dir to save drawn images")


def _check_outputs(opts: InferOptions) -> None:
    out = Path(opts.out_dir)
    for sub, on in (("preds", opts.pred and opts.format == "json"), ("vis", opts.vis)):
        d = out / sub
        if on and d.is_dir() and any(d.iterdir()) and not opts.force:
            raise DetError(f"{d}: not empty; use --force to overwrite or pick another --out-dir")
    if opts.format == "coco":
        ensure_new(out / "results.json", opts.force)
    for f in (opts.out_video, opts.out_mot):
        if f is not None:
            ensure_new(f, opts.force)


def _expected_frames(sources: Sequence[Source], limit: int | None) -> int | None:
    from det.core.inference.inputs import stream_source

    total = 0
    for s in sources:
        if s.kind == "video" and stream_source(s.path) is not None:
            return limit  # a camera or a live stream: length unknown
        if s.kind == "video":
            cap = cv2.VideoCapture(s.path)
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
            total += max(n, 0)
        else:
            total += 1
    return min(total, limit) if limit is not None else total


class _Outputs:
    """Everything one prediction is handed to: tracker, writers, drawn images, video, window."""

    def __init__(self, detector: DetectorLike, sources: Sequence[Source], opts: InferOptions,
                 summary: InferSummary, on_prediction: Callable[[Prediction, np.ndarray], None] | None) -> None:
        self.opts, self.summary, self.on_prediction = opts, summary, on_prediction
        out_dir = Path(opts.out_dir)
        self.writers: list[Any] = []
        if opts.format == "json" and opts.pred:
            self.writers.append(JsonWriter(out_dir))
            summary.outputs["preds"] = str(out_dir / "preds")
        elif opts.format == "jsonl":
            self.writers.append(JsonlWriter(opts.stdout))
        elif opts.format == "coco":
            self.writers.append(CocoWriter(out_dir / "results.json", opts.ann, detector.class_names))
            summary.outputs["coco"] = str(out_dir / "results.json")
        num_things = getattr(detector, "panoptic_num_things", None)
        if num_things is not None and opts.pred and opts.slice is None:
            self.writers.append(PanopticWriter(out_dir, detector.class_names, num_things, force=opts.force))
            summary.outputs["panoptic"] = str(out_dir / "panoptic.json")
        self.draw = VisWriter(out_dir, detector.class_names)
        if opts.vis:
            summary.outputs["vis"] = str(out_dir / "vis")
        self.video: VideoWriter | None = None
        self.tracker = _Tracking(opts, sources) if opts.track else None

    def handle(self, pred: Prediction, fr: Frame) -> None:
        opts = self.opts
        pred.img_path, pred.name = fr.path, fr.name
        pred.frame = fr.index if fr.source.kind == "video" else None
        if self.tracker is not None:
            pred = self.tracker.update(pred)
        drawn = self.draw.draw(pred, fr.image) if (opts.vis or opts.out_video or opts.show) else None
        for w in self.writers:
            w.write(pred, fr.image)
        if opts.vis:
            self.draw.write(pred, drawn=drawn)
        if opts.out_video is not None:
            if self.video is None:
                self.video = VideoWriter(opts.out_video, fps=fr.fps or 25.0)
            self.video.write(drawn)
        if opts.show:
            cv2.imshow("det infer", drawn)
            cv2.waitKey(1)
        if self.on_prediction is not None:
            self.on_prediction(pred, fr.image)
        self.summary.images += 1
        self.summary.instances += len(pred)

    def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.video is not None:
            self.video.close()
            self.summary.outputs["video"] = str(self.opts.out_video)
        if self.tracker is not None:
            self.summary.outputs.update(self.tracker.close())

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()


def _predict(detector: DetectorLike, frames: list[Frame], opts: InferOptions) -> list[Prediction]:
    if opts.slice is None:
        return detector.predict_prepared([fr.payload for fr in frames])
    return [slice_predict(fr.image, detector.predict_arrays, opts.slice, opts.overlap, opts.merge, opts.merge_iou,
                          opts.full, batch_size=opts.batch_size, img_path=fr.path,
                          class_names=detector.class_names) for fr in frames]


def _batches(reader: PrefetchReader, opts: InferOptions, summary: InferSummary) -> Iterator[list[Frame]]:
    """Readable frames in batches of --batch-size; unreadable ones skipped with a warning (or --strict)."""
    log = get_logger()
    batch: list[Frame] = []
    for fr in reader:
        if fr.error is not None:
            if opts.strict:
                raise DetError(f"{fr.path}: {fr.error} (--strict)")
            log.warning("%s: %s; skipped", fr.path, fr.error)
            summary.skipped.append(fr.path)
            continue
        batch.append(fr)
        if len(batch) >= opts.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_inference(detector: DetectorLike, sources: Sequence[Source], opts: InferOptions,
                  on_prediction: Callable[[Prediction, np.ndarray], None] | None = None) -> InferSummary:
    """Detect on every source, write the requested outputs, return counts and timing."""
    check_options(opts)
    _check_outputs(opts)
    summary = InferSummary()
    outputs = _Outputs(detector, sources, opts, summary, on_prediction)
    transform = None if opts.slice is not None else (lambda fr: detector.preprocess(fr.image, fr.path))
    start = time.perf_counter()
    total = _expected_frames(sources, opts.limit)
    reader = PrefetchReader(list(sources), transform=transform, prefetch=max(opts.prefetch, 2 * opts.batch_size),
                            workers=opts.workers, limit=opts.limit)
    try:
        with make_progress() as progress:
            task = progress.add_task("infer", total=total or None, info="")
            for batch in _batches(reader, opts, summary):
                for fr, pred in zip(batch, _predict(detector, batch, opts)):
                    outputs.handle(pred, fr)
                progress.advance(task, len(batch))
        outputs.close()
    except BaseException:
        outputs.abort()
        raise
    finally:
        reader.close()
        if opts.show:
            cv2.destroyAllWindows()
    summary.seconds = time.perf_counter() - start
    return summary


TRACKER_TYPES = {"bytetrack": "ByteTrack", "sort": "SORT", "ocsort": "OCSORT"}


def sequence_key(source: Source) -> str:
    """Frames of one video, or images of one folder, form one tracking sequence."""
    return source.path if source.kind == "video" else str(Path(source.path).parent)


class _Tracking:
    """Feeds each frame's detections to a det.core.tracking tracker and keeps MOTChallenge rows
    (`frame, id, x, y, w, h, score`). The prediction is narrowed to the tracked instances, each
    carrying its track id (`BaseTracker.track`: a track's box and score are its detection's)."""

    def __init__(self, opts: InferOptions, sources: Sequence[Source]) -> None:
        from det.core.tracking import build_tracker

        name = str(opts.track).lower()
        if name not in TRACKER_TYPES and opts.tracker_cfg is None:
            raise DetError(f"--track: unknown tracker '{opts.track}' (one of: {', '.join(TRACKER_TYPES)})")
        seqs = list(dict.fromkeys(sequence_key(s) for s in sources))
        if len(seqs) > 1:
            raise DetError(f"--track: inputs form {len(seqs)} sequences ({seqs[0]}, {seqs[1]}, ...); "
                           "track one video or one frame folder per run")
        self.tracker = build_tracker(opts.tracker_cfg if opts.tracker_cfg is not None else {"type": TRACKER_TYPES[name]})
        self.tracker.reset()
        self.out_mot = opts.out_mot
        self.force = opts.force
        self.rows: list[np.ndarray] = []
        self.frame_id = 0

    def update(self, pred: Prediction) -> Prediction:
        self.frame_id += 1
        out = self.tracker.track(self.frame_id, pred)
        if len(out):
            xyxy = out.bboxes.astype(np.float64)
            self.rows.append(np.column_stack([np.full(len(out), self.frame_id), out.track_ids, xyxy[:, :2],
                                              xyxy[:, 2:] - xyxy[:, :2], out.scores]))
        return out

    def close(self) -> dict[str, str]:
        if self.out_mot is None:
            return {}
        from det.core.data.mot_io import write_mot_txt

        rows = np.concatenate(self.rows) if self.rows else np.zeros((0, 7))
        write_mot_txt(self.out_mot, rows, force=self.force)
        return {"mot": str(self.out_mot)}
