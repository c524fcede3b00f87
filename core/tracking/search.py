"""Tracker parameter search on cached detections (the engine behind `det mot-search`).

Unlike re-running detector + tracker for every combination, detections are produced once
per sequence (public det.txt, a cache folder of `<seq>.txt` files in det.txt format, or a
detector run once and cached), then each combination of list-valued tracker parameters runs
only the tracker and the MOT metrics, in parallel worker processes.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import ConfigError, DataError
from det.core.evaluation.mot import HIGHER_IS_BETTER, METRIC_KEYS, evaluate_sequences, preprocess_sequence
from det.core.fileio import atomic_write_text
from det.core.log import get_logger, make_progress
from det.core.tracking import build_tracker, run_tracker
from det.core.data.mot_io import (NCOLS, detection_rows, detections_by_frame, find_sequences, format_mot_rows,
                                      read_mot_txt, read_seqinfo)

# A detector for the cache: a batch of BGR frames -> per frame (N, 5) x1, y1, x2, y2, score.
DetectFn = Callable[[list[np.ndarray]], list[np.ndarray]]


# ------------------------------------------------------------------------------ the grid
def _list_leaves(cfg: Any, prefix: str) -> list[tuple[str, list]]:
    found = []
    if isinstance(cfg, Mapping):
        for k, v in cfg.items():
            found += _list_leaves(v, f"{prefix}.{k}")
    elif isinstance(cfg, list):
        if not cfg:
            raise ConfigError(f"{prefix}: an empty list gives no value to search")
        found.append((prefix, list(cfg)))
    return found


def _set_path(cfg: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")[1:]
    node = cfg
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value


def expand_grid(tracker_cfg: Mapping[str, Any]) -> tuple[list[str], list[tuple[dict, dict]]]:
    """List-valued keys of the tracker section (at any depth) -> their dotted names
    (`tracker.match_iou_thr`) and every combination as (params, concrete tracker config)."""
    import copy

    leaves = _list_leaves(dict(tracker_cfg), "tracker")
    names = [n for n, _ in leaves]
    combos = []
    for values in itertools.product(*[v for _, v in leaves]):
        cfg = copy.deepcopy(dict(tracker_cfg))
        for name, value in zip(names, values):
            _set_path(cfg, name, value)
        combos.append((dict(zip(names, values)), cfg))
    return names, combos


def check_tracker_config(tracker_cfg: Any) -> None:
    """Every combination of the (possibly list-valued) tracker section builds."""
    if not isinstance(tracker_cfg, Mapping):
        raise ConfigError(f"tracker: expected a mapping with 'type', got {type(tracker_cfg).__name__}")
    _, combos = expand_grid(tracker_cfg)
    for params, cfg in combos:
        try:
            build_tracker(cfg)
        except ConfigError as exc:
            where = ", ".join(f"{k}={v}" for k, v in params.items())
            raise ConfigError(f"{exc} (combination {where})" if where else str(exc)) from None


# ---------------------------------------------------------------------------- sequences
@dataclass
class SequenceInput:
    """What the tracker workers need for one sequence (plain arrays, cheap to send)."""

    name: str
    num_frames: int
    gt: np.ndarray  # (N, 10) gt rows
    detections: np.ndarray  # (M, 10) det rows


def sequence_dirs(root: str | Path) -> list[Path]:
    return find_sequences(root)


def load_gt(seq: Path) -> np.ndarray:
    path = seq / "gt" / "gt.txt"
    if not path.is_file():
        raise DataError(f"{path}: ground truth not found (mot-search needs gt to score combinations)")
    return read_mot_txt(path, "gt")


def detect_sequence(seq: Path, detect: DetectFn, batch_size: int = 8, progress: Any = None) -> np.ndarray:
    """Run `detect` once over the frames of `seq` (img1/) -> det.txt rows."""
    import cv2

    info = read_seqinfo(seq)
    img_dir = seq / info.get("imDir", "img1")
    ext = info.get("imExt", ".jpg")
    frames = [img_dir / f"{i:06d}{ext}" for i in range(1, info["seqLength"] + 1)]
    missing = [f for f in frames if not f.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: frame missing ({len(missing)} of {len(frames)} frames not found)")
    rows = []
    for start in range(0, len(frames), batch_size):
        paths = frames[start:start + batch_size]
        images = []
        for p in paths:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise DataError(f"{p}: cannot read image")
            images.append(img)
        rows.append(detection_rows({start + k + 1: dets for k, dets in enumerate(detect(images))}))
        if progress is not None:
            progress(len(paths))
    return np.concatenate(rows) if rows else np.empty((0, NCOLS))


def prepare_sequences(root: str | Path, public: bool = False, cache: str | Path | None = None,
                      detect: DetectFn | None = None) -> list[SequenceInput]:
    """Gather gt and detections of every sequence under `root`.

    public: det/det.txt of each sequence. cache: `<cache>/<seq>.txt` files; those missing are
    computed with `detect` (once) and written there. detect without cache: computed, not kept.
    """
    seqs = sequence_dirs(root)
    if public and (cache is not None or detect is not None):
        raise DataError("--public uses the sequences' det/det.txt; do not combine it with --detections/--weights")
    if not public and cache is None and detect is None:
        raise DataError("no detections: pass --public, --detections CACHE or a detector (--weights)")
    todo = []
    out: list[SequenceInput] = []
    for seq in seqs:
        info = read_seqinfo(seq)
        gt = load_gt(seq)
        if public:
            path = seq / "det" / "det.txt"
            if not path.is_file():
                raise DataError(f"{path}: public detections not found")
            dets = read_mot_txt(path, "det")
        elif cache is not None and (Path(cache) / f"{seq.name}.txt").is_file():
            dets = read_mot_txt(Path(cache) / f"{seq.name}.txt", "det")
        elif detect is None:
            raise DataError(f"{Path(cache) / (seq.name + '.txt')}: no cached detections for sequence '{seq.name}' "
                            "(pass --weights to compute them)")
        else:
            todo.append(len(out))
            dets = np.empty((0, NCOLS))
        out.append(SequenceInput(seq.name, int(info["seqLength"]), gt, dets))
    if todo:
        total = sum(out[i].num_frames for i in todo)
        with make_progress() as bar:
            task = bar.add_task("detect (once per sequence)", total=total, info="")
            for i in todo:
                seq = seqs[i]
                out[i].detections = detect_sequence(seq, detect, progress=lambda n: bar.advance(task, n))
                if cache is not None:
                    atomic_write_text(Path(cache) / f"{seq.name}.txt", _det_text(out[i].detections))
    return out


def _det_text(rows: np.ndarray) -> str:
    rows = np.asarray(rows).reshape(-1, NCOLS)
    return format_mot_rows(rows[:, :7])


# ------------------------------------------------------------------------------- search
def evaluate_tracker(tracker_cfg: Mapping[str, Any], sequences: Sequence[SequenceInput],
                     benchmark: str = "MOT17") -> dict:
    """Run one tracker configuration on every sequence and score it (metrics dict)."""
    items = []
    for s in sequences:
        dets = detections_by_frame(s.detections, s.num_frames)
        rows = run_tracker(tracker_cfg, dets, s.num_frames)
        res = np.full((len(rows), NCOLS), -1.0)
        res[:, :7] = rows
        items.append((s.name, preprocess_sequence(s.gt, res, s.num_frames, benchmark, True, f"{s.name}/gt/gt.txt",
                                                  f"{s.name} (tracker output)")))
    return evaluate_sequences(items)


_WORKER: dict = {}


def _init_worker(sequences: list[SequenceInput], benchmark: str) -> None:
    _WORKER["sequences"] = sequences
    _WORKER["benchmark"] = benchmark


def _run_combo(index: int, cfg: dict) -> tuple[int, dict]:
    return index, evaluate_tracker(cfg, _WORKER["sequences"], _WORKER["benchmark"])


def search(tracker_cfg: Mapping[str, Any], sequences: list[SequenceInput], metric: str = "HOTA", jobs: int = 1,
           benchmark: str = "MOT17", progress: bool = True) -> tuple[list[str], list[dict]]:
    """Score every combination; returns (parameter names, rows sorted best first by `metric`).

    Each row holds the parameters (dotted names) and one column per metric (HOTA, MOTA, ...)."""
    if metric not in METRIC_KEYS:
        from det.core.errors import did_you_mean

        raise ConfigError(f"--metric: unknown metric '{metric}'{did_you_mean(metric, METRIC_KEYS)}")
    check_tracker_config(tracker_cfg)
    names, combos = expand_grid(tracker_cfg)
    results: list[dict | None] = [None] * len(combos)
    with make_progress() as bar:
        task = bar.add_task(f"search ({len(combos)} combinations)", total=len(combos), info="")
        if jobs <= 1 or len(combos) == 1:
            _init_worker(sequences, benchmark)
            for i, (_, cfg) in enumerate(combos):
                results[i] = _run_combo(i, cfg)[1]
                bar.advance(task)
        else:
            # fork: cheap, and workers use only numpy/scipy (never torch), so a detector that ran
            # in this process is harmless. spawn would re-import the CLI's __main__ module.
            ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(combos)), mp_context=ctx,
                                     initializer=_init_worker, initargs=(sequences, benchmark)) as pool:
                futures = [pool.submit(_run_combo, i, cfg) for i, (_, cfg) in enumerate(combos)]
                for fut in as_completed(futures):
                    i, res = fut.result()
                    results[i] = res
                    bar.advance(task)
    rows = []
    for (params, _), res in zip(combos, results):
        assert res is not None
        rows.append({**params, **{k: res[k] for k in METRIC_KEYS}})
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    order = sorted(range(len(rows)), key=lambda i: (sign * rows[i][metric], i))
    get_logger().debug("searched %d combinations", len(rows))
    return names, [rows[i] for i in order]


def best_set_line(names: list[str], best: Mapping[str, Any]) -> str:
    """The best combination as `--set` options."""
    return " ".join(f"--set {n}={_yaml_scalar(best[n])}" for n in names)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def detector_fn(detector: Any, classes: Sequence[str] | None = None) -> DetectFn:
    """Adapt a `det.core.apis.Detector` to DetectFn (boxes + scores, optionally some classes)."""
    keep_names = set(classes or [])

    def detect(images: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for pred in detector.predict_arrays(images):
            keep = np.ones(len(pred.scores), bool)
            if keep_names:
                keep = np.array([name in keep_names for name in pred.class_names], bool).reshape(-1)
            out.append(np.column_stack([np.asarray(pred.bboxes, np.float64)[keep],
                                        np.asarray(pred.scores, np.float64)[keep]]).reshape(-1, 5))
        return out

    return detect
