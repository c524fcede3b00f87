"""Training logs: det's `log.jsonl`, MMDetection 3.x `scalars.json` and 2.x `*.log.json`.

All three are JSON Lines. They are read into one model (`RunLog`: a list of `Record`s with a
mode, an epoch and a global step), detected from their content:
- MMDetection 2.x: records carry `mode` ('train'/'val') and a per-epoch `iter`, no `step`; the
  first line (env_info/config) is skipped. Global step = (epoch - 1) * iters_per_epoch + iter.
- MMDetection 3.x `scalars.json` and det's `log.jsonl`: training records carry `step` (global
  iteration), `epoch`, `iter`; validation records carry metric keys with a '/' (`coco/bbox_mAP`)
  and a `step` that is the epoch in epoch-based runs. A `mode` key, when present, wins.
Validation records without `epoch` are filed under the epoch of the training records before
them (MMDetection's analyze_logs files the first record of every epoch under the previous one;
this module does not).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError

BOOKKEEPING = ("mode", "epoch", "iter", "step")
_MIN_WORDS = ("loss", "time", "memory", "error")
_MAX_WORDS = ("map", "ap", "ar", "acc", "precision", "recall", "hota", "mota", "idf1", "iou", "f1")


@dataclass
class Record:
    mode: str  # 'train' or 'val'
    epoch: int | None
    step: float | None
    values: dict[str, float]


@dataclass
class RunLog:
    path: str
    format: str  # 'mmdet2' | 'scalars' (MMDetection 3.x scalars.json or det log.jsonl)
    records: list[Record] = field(default_factory=list)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for rec in self.records:
            for k in rec.values:
                seen.setdefault(k, None)
        return list(seen)

    def resolve_key(self, key: str) -> str:
        """The log's own name for `key`: exact, or the part after '/' (`bbox_mAP` finds
        `coco/bbox_mAP`); a missing key is an error listing the keys the log has."""
        keys = self.keys()
        if key in keys:
            return key
        matches = [k for k in keys if k.split("/")[-1] == key.split("/")[-1]]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DetError(f"{self.path}: key '{key}' is ambiguous ({', '.join(matches)})")
        raise DetError(f"{self.path}: no key '{key}' in this log; it has: {', '.join(keys) or 'none'}")

    def series(self, key: str) -> list[Record]:
        """Records holding `key`: the training records when any has it, else validation ones
        (3.x validation records repeat `time`, 2.x ones repeat `lr`)."""
        key = self.resolve_key(key)
        train = [r for r in self.records if r.mode == "train" and key in r.values]
        return train or [r for r in self.records if r.mode != "train" and key in r.values]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _read_lines(path: Path) -> list[tuple[int, dict]]:
    """JSON objects by line number. A last line that is not JSON (a record half-written when the
    run was killed) is skipped with a warning; a bad line before the last is an error."""
    from det.core.fileio import read_text
    from det.core.log import get_logger

    rows, bad = [], []
    for lineno, line in enumerate(read_text(path, "log file").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((lineno, exc.msg))
            continue
        if not isinstance(obj, dict):
            raise DetError(f"{path}:{lineno}: expected one JSON object per line, got {type(obj).__name__}")
        rows.append((lineno, obj))
    if bad and (not rows or len(bad) > 1 or bad[0][0] < rows[-1][0]):
        raise DetError(f"{path}:{bad[0][0]}: not a JSON Lines training log ({bad[0][1]})")
    if not rows:
        raise DetError(f"{path}: empty log")
    if bad:
        get_logger().warning(f"{path}:{bad[0][0]}: last line is not JSON (a record cut short?); skipped")
    return rows


def load_log(path: str | Path) -> RunLog:
    """Read one training log of any supported format."""
    path = Path(path)
    rows = _read_lines(path)
    is_v2 = any(obj.get("mode") in ("train", "val") for _, obj in rows) and not any("step" in obj for _, obj in rows)
    run = RunLog(str(path), "mmdet2" if is_v2 else "scalars")
    if is_v2:
        _parse_v2(run, rows)
    else:
        _parse_scalars(run, rows)
    if not run.records:
        raise DetError(f"{path}: no numeric training or validation records (not a training log?)")
    return run


def _values(obj: dict) -> dict[str, float]:
    """Numeric values, NaN and Infinity included (a diverged run's losses must show)."""
    return {k: float(v) for k, v in obj.items()
            if k not in BOOKKEEPING and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _parse_v2(run: RunLog, rows: list[tuple[int, dict]]) -> None:
    recs = [(obj, _values(obj)) for _, obj in rows if obj.get("mode") in ("train", "val")]
    train_iters = [int(o["iter"]) for o, _ in recs if o["mode"] == "train" and _number(o.get("iter"))]
    val_iters = [int(o["iter"]) for o, _ in recs if o["mode"] == "val" and _number(o.get("iter"))]
    per_epoch = max(val_iters + train_iters, default=0)
    for obj, vals in recs:
        if not vals:
            continue
        epoch = int(obj["epoch"]) if _number(obj.get("epoch")) else None
        mode = "train" if obj["mode"] == "train" else "val"
        step = None
        if epoch is not None and per_epoch:
            it = int(obj["iter"]) if (mode == "train" and _number(obj.get("iter"))) else per_epoch
            step = (epoch - 1) * per_epoch + it
        run.records.append(Record(mode, epoch, step, vals))


def _parse_scalars(run: RunLog, rows: list[tuple[int, dict]]) -> None:
    last_epoch: int | None = None
    last_step: float | None = None
    for _, obj in rows:
        vals = _values(obj)
        if not vals or len(obj) < 2:
            continue
        mode = obj.get("mode")
        if mode not in ("train", "val", "test"):
            mode = "val" if any("/" in k for k in obj) else "train"
        mode = "train" if mode == "train" else "val"
        epoch = int(obj["epoch"]) if _number(obj.get("epoch")) else None
        step = float(obj["step"]) if _number(obj.get("step")) else (float(obj["iter"]) if _number(obj.get("iter")) else None)
        if mode == "train":
            last_epoch = epoch if epoch is not None else last_epoch
            last_step = step if step is not None else last_step
        else:
            # 3.x validation records carry step = epoch (epoch-based runs) and no epoch key:
            # they belong to the epoch that just finished, at its last training step.
            if epoch is None:
                epoch = last_epoch if last_epoch is not None else (int(step) if step is not None else None)
            if last_step is not None:
                step = last_step
        run.records.append(Record(mode, epoch, step, vals))


def load_logs(paths: Sequence[str | Path]) -> list[RunLog]:
    if not paths:
        raise DetError("give at least one log file")
    return [load_log(p) for p in paths]


# --------------------------------------------------------------------------- train time

def train_time(run: RunLog, include_outliers: bool = False) -> dict:
    """MMDetection's cal_train_time: per epoch the mean of the training records' `time`, the
    first record of every epoch dropped unless `include_outliers`; slowest/fastest epoch,
    std over epochs (population) and the mean of the epoch means."""
    groups: dict[Any, list[float]] = {}
    for rec in run.records:
        if rec.mode == "train" and _number(rec.values.get("time")):
            groups.setdefault(rec.epoch, []).append(rec.values["time"])
    if not groups:
        raise DetError(f"{run.path}: no training records with 'time'; it has: {', '.join(run.keys())}")
    epochs, means = [], []
    for epoch, times in groups.items():
        times = times if include_outliers else times[1:]
        if times:
            epochs.append(epoch)
            means.append(float(np.mean(times)))
    if not means:
        raise DetError(f"{run.path}: every epoch has a single timed record; use --include-outliers or log more often")
    arr = np.array(means)
    slow, fast = int(arr.argmax()), int(arr.argmin())
    return {
        "log": run.path,
        "slowest_epoch": epochs[slow], "slowest_time": means[slow],
        "fastest_epoch": epochs[fast], "fastest_time": means[fast],
        "std_over_epochs": float(arr.std()), "average_iter_time": float(arr.mean()),
        "epochs": len(means), "include_outliers": include_outliers,
    }


# --------------------------------------------------------------------------- summary

def best_direction(key: str) -> str | None:
    """'min' for losses and times, 'max' for accuracy-like metrics, None otherwise (lr)."""
    name = key.split("/")[-1].lower()
    if any(w in name for w in _MIN_WORDS):
        return "min"
    words = name.replace("@", "_").split("_")
    if any(w.startswith(m) for w in words for m in _MAX_WORDS):
        return "max"
    return None


def summary(run: RunLog) -> dict:
    """Last and best value (with epoch and step) of every key of a run. Best is over the finite
    values; `non_finite` counts NaN/Infinity values and `first_non_finite` says where the first
    one is. Non-finite values appear as the strings 'NaN', 'Infinity', '-Infinity' (strict JSON)."""
    rows = {}
    for key in run.keys():
        recs = run.series(key)
        vals = [r.values[key] for r in recs]
        last = recs[-1]
        row: dict[str, Any] = {"last": _json_number(vals[-1]), "last_epoch": last.epoch, "last_step": last.step,
                               "count": len(vals), "best": None, "best_epoch": None, "best_step": None,
                               "non_finite": 0, "first_non_finite": None}
        finite = [i for i, v in enumerate(vals) if math.isfinite(v)]
        if len(finite) < len(vals):
            first = next(i for i, v in enumerate(vals) if not math.isfinite(v))
            row.update(non_finite=len(vals) - len(finite), first_non_finite={
                "value": _json_number(vals[first]), "epoch": recs[first].epoch, "step": recs[first].step})
        direction = best_direction(key)
        if direction and finite:
            pick = min if direction == "min" else max
            i = pick(finite, key=lambda j: vals[j])
            row.update(best=vals[i], best_epoch=recs[i].epoch, best_step=recs[i].step)
        rows[key] = row
    return {"log": run.path, "format": run.format, "keys": rows}


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# --------------------------------------------------------------------------- curves

def curve(run: RunLog, key: str, x: str = "step", smooth: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """x and y of `key` for plotting. x='epoch' places training records evenly inside their
    epoch (epoch - 1, epoch] and validation records at their epoch."""
    if x not in ("step", "epoch"):
        raise DetError(f"--x must be 'step' or 'epoch', got '{x}'")
    recs = run.series(key)
    name = run.resolve_key(key)
    ys = np.array([r.values[name] for r in recs], dtype=np.float64)
    if x == "step":
        xs = np.array([r.step if r.step is not None else i for i, r in enumerate(recs)], dtype=np.float64)
    else:
        if any(r.epoch is None for r in recs):
            raise DetError(f"{run.path}: '{name}' has records without an epoch; use --x step")
        counts: dict[int, int] = {}
        for r in recs:
            counts[r.epoch] = counts.get(r.epoch, 0) + 1  # type: ignore[index]
        seen: dict[int, int] = {}
        xs = np.empty(len(recs))
        for i, r in enumerate(recs):
            k = seen.get(r.epoch, 0) + 1  # type: ignore[arg-type]
            seen[r.epoch] = k  # type: ignore[index]
            n = counts[r.epoch]  # type: ignore[index]
            xs[i] = r.epoch if r.mode != "train" else (r.epoch - 1) + k / n  # type: ignore[operator]
    if smooth > 1:
        ys = moving_average(ys, smooth)
    return xs, ys


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` values (shorter at the start)."""
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def plot_logs(runs: Sequence[RunLog], keys: Sequence[str], out: str | Path, legend: Sequence[str] | None = None,
              title: str | None = None, x: str = "step", smooth: int = 1, style: str = "darkgrid") -> dict:
    """One figure, one panel per key, one line per run; written to `out` (.png/.pdf/.svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise DetError(f"{out}: output must end in .png, .pdf or .svg")
    if not keys:
        raise DetError("give at least one --keys")
    if legend and len(legend) not in (len(runs), len(runs) * len(keys)):
        raise DetError(f"--legend needs {len(runs)} names (one per log) or {len(runs) * len(keys)}, got {len(legend)}")
    if smooth < 1:
        raise DetError("--smooth must be >= 1")
    styles = ("white", "dark", "whitegrid", "darkgrid", "ticks")
    if style not in styles:
        raise DetError(f"--style must be one of {', '.join(styles)}")
    data = {(i, k): curve(run, k, x, smooth) for i, run in enumerate(runs) for k in keys}  # errors before drawing
    sns.set_style(style)
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 3.2 * len(keys)), squeeze=False, sharex=True)
    points: dict[str, dict[str, int]] = {}
    palette = sns.color_palette(n_colors=max(len(runs), 1))
    for j, key in enumerate(keys):
        ax = axes[j][0]
        for i, run in enumerate(runs):
            xs, ys = data[(i, key)]
            if legend and len(legend) == len(runs) * len(keys):
                label = legend[i * len(keys) + j]
            else:
                label = legend[i] if legend else Path(run.path).name
            validation = all(r.mode != "train" for r in run.series(key))
            ax.plot(xs, ys, label=label, color=palette[i], linewidth=1.2,
                    marker="o" if validation or len(xs) < 30 else None, markersize=3)
            points.setdefault(label, {})[key] = int(len(xs))
        ax.set_ylabel(key + (f" (smoothed, {smooth})" if smooth > 1 else ""))
        ax.legend(loc="best", fontsize=8)
    axes[-1][0].set_xlabel("iteration" if x == "step" else "epoch")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    from det.core.fileio import atomic_write

    fmt = out.suffix.lower().lstrip(".")
    atomic_write(out, lambda fh: fig.savefig(fh, format=fmt, dpi=120))
    plt.close(fig)
    return {"out": str(out), "points": points, "keys": list(keys), "x": x, "smooth": smooth}
