"""`det test` on a MOT preset: detector per frame, tracker per sequence, MOTChallenge metrics.

A MOT preset has a `tracker` section and MOTChallenge test data
(`data.test.dataset: {type: MOTChallengeDataset, root: ...}`; `data.val` when there is no test
split). `det.core.engine.runner.test` then feeds the detector's predictions (the same loader,
model and checkpoint handling as any `det test`) to `MOTTrackingEvaluator`, which runs the
tracker over each sequence in frame order, writes `<tracks_dir>/<seq>.txt` (MOTChallenge
results) and `<detections_dir>/<seq>.txt` (det.txt format: a `det mot-search --detections`
cache), and scores the written files with `evaluate_mot` (HOTA, CLEAR, Identity).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import ConfigError, DetError
from det.core.evaluation.mot import METRIC_KEYS, evaluate_mot
from det.core.fileio import atomic_write_text, ensure_new
from det.core.log import get_logger
from det.core.tracking import build_tracker, run_tracker
from det.core.data.mot_io import detection_rows, format_mot_rows, write_mot_txt

MOT_DATASET = "MOTChallengeDataset"


def split_dataset_cfg(cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The dataset component `det test` reads (`data.test`, else `data.val`), or None."""
    data = cfg.get("data")
    if not isinstance(data, Mapping):
        return None
    section = data.get("test") if isinstance(data.get("test"), Mapping) else data.get("val")
    dataset = section.get("dataset") if isinstance(section, Mapping) else None
    return dataset if isinstance(dataset, Mapping) else None


def is_mot_preset(cfg: Mapping[str, Any]) -> bool:
    """A `tracker` section and MOTChallenge test data: `det test` evaluates detector + tracker."""
    tracker = cfg.get("tracker")
    dataset = split_dataset_cfg(cfg)
    return isinstance(tracker, Mapping) and bool(tracker) and dataset is not None and dataset.get("type") == MOT_DATASET


def _check_no_grid(tracker_cfg: Mapping[str, Any], prefix: str = "tracker") -> None:
    for key, value in tracker_cfg.items():
        if isinstance(value, list):
            raise ConfigError(f"{prefix}.{key}: a list of values is a search grid; det test needs one value "
                              f"(search with det mot-search, then --set {prefix}.{key}=VALUE)")
        if isinstance(value, Mapping):
            _check_no_grid(value, f"{prefix}.{key}")


class MOTTrackingEvaluator:
    """Collects per-frame detections (the evaluator protocol of `run_evaluation`), then tracks,
    writes and scores every sequence of a `MOTChallengeDataset`.

    `evaluate()` returns the combined metrics (`METRIC_KEYS`: HOTA, DetA, AssA, ..., MOTA, IDF1,
    IDSW, ...), empty when no sequence has ground truth; `summary()` adds per-sequence metrics,
    the output folders and the tracker's speed."""

    def __init__(self, dataset: Any, tracker_cfg: Mapping[str, Any], tracks_dir: str | Path,
                 detections_dir: str | Path | None = None, force: bool = False) -> None:
        if type(dataset).__name__ != MOT_DATASET:
            raise ConfigError(f"data.test.dataset: a tracker preset needs type {MOT_DATASET}, got {type(dataset).__name__}")
        if not isinstance(tracker_cfg, Mapping):
            raise ConfigError(f"tracker: expected a mapping with 'type', got {type(tracker_cfg).__name__}")
        if not getattr(dataset, "test_mode", False):
            raise ConfigError("data.test.dataset.test_mode: must be true for tracking (every frame, none filtered out)")
        _check_no_grid(tracker_cfg)
        build_tracker(dict(tracker_cfg))  # errors name tracker.<key> before the detector runs
        self.dataset = dataset
        self.tracker_cfg = dict(tracker_cfg)
        self.tracks_dir = Path(tracks_dir)
        self.detections_dir = Path(detections_dir) if detections_dir is not None else None
        self.sequences = dataset.sequences()
        for name in self.sequences:  # refuse to overwrite earlier results before any work
            ensure_new(self.tracks_dir / f"{name}.txt", force)
            if self.detections_dir is not None:
                ensure_new(self.detections_dir / f"{name}.txt", force)
        self.index = {int(info["img_id"]): i for i, info in enumerate(dataset.data_list)}
        self._summary: dict = {}
        self.reset()

    def reset(self) -> None:
        self.dets: dict[int, np.ndarray] = {}

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        for sample, pred in zip(samples, preds):
            idx = self.index.get(int(sample.img_id))
            if idx is None:
                raise DetError(f"{sample.img_path}: frame is not part of the MOT dataset (img_id {sample.img_id})")
            boxes = np.asarray(pred.bboxes, np.float64).reshape(-1, 4)
            scores = np.asarray(pred.scores, np.float64).reshape(-1) if pred.scores is not None else np.ones(len(boxes))
            self.dets[idx] = np.column_stack([boxes, scores]).reshape(-1, 5)

    def evaluate(self) -> dict:
        data = self.dataset.data_list
        track_s, frames, tracks, with_gt = 0.0, 0, 0, []
        for name, indices in self.sequences.items():
            missing = [i for i in indices if i not in self.dets]
            if missing:
                raise DetError(f"{data[missing[0]]['img_path']}: no detector output for this frame")
            per_frame = {int(data[i]["frame_id"]): self.dets[i] for i in indices}
            length = int(self.dataset.sequence_info[name]["length"])
            t0 = time.perf_counter()
            rows = run_tracker(self.tracker_cfg, per_frame, length)
            track_s += time.perf_counter() - t0
            frames += len(indices)
            tracks += len(np.unique(rows[:, 1])) if len(rows) else 0
            write_mot_txt(self.tracks_dir / f"{name}.txt", rows, force=True)
            if self.detections_dir is not None:
                atomic_write_text(self.detections_dir / f"{name}.txt", format_mot_rows(detection_rows(per_frame)))
            if self.dataset.sequence_info[name]["has_gt"]:
                with_gt.append(name)
        log = get_logger()
        log.info("tracked %d sequences (%d frames, %d tracks) into %s", len(self.sequences), frames, tracks,
                 self.tracks_dir)
        result = evaluate_mot(self.dataset.root, self.tracks_dir, self.dataset.benchmark, sequences=with_gt) if with_gt else {}
        if not with_gt:
            log.warning("no sequence has gt/gt.txt: wrote the tracks only, no metrics")
        self._summary = {
            "benchmark": self.dataset.benchmark,
            "num_sequences": len(self.sequences),
            "evaluated_sequences": with_gt,
            "tracks_dir": str(self.tracks_dir),
            "sequences": result.get("sequences", {}),
            "track_s": round(track_s, 3),
            "track_fps": round(frames / track_s, 1) if track_s > 0 else None,
        }
        if self.detections_dir is not None:
            self._summary["detections_dir"] = str(self.detections_dir)
        return {k: result[k] for k in (*METRIC_KEYS, "HOTA(0)", "LocA(0)") if k in result}

    def summary(self) -> dict:
        return dict(self._summary)
