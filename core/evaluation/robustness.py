"""Corruption robustness (the seed's robustness benchmark, after Michaelis et al. 2019): a model
tested on clean images and on images corrupted by imagecorruptions' functions at severities 1-5.

P is the performance on clean data, mPC the mean performance over the corruptions and severities
1-5 tested, rPC = mPC / P, each for every metric of the evaluator.
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import os
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError

BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
             "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
GROUPS = {"benchmark": BENCHMARK, "all": BENCHMARK + EXTRA, "noise": BENCHMARK[:3], "blur": BENCHMARK[3:7],
          "weather": BENCHMARK[7:11], "digital": BENCHMARK[11:], "holdout": EXTRA}
HINT = "--corrupt needs the imagecorruptions package: pip install 'det[robust]'"


def parse_corruptions(spec: str) -> list[str]:
    """'gaussian_noise,motion_blur' or group names (benchmark, all, noise, blur, weather, digital, holdout)."""
    from det.core.errors import did_you_mean

    names: list[str] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item in GROUPS:
            names += [n for n in GROUPS[item] if n not in names]
        elif item in GROUPS["all"]:
            names += [item] if item not in names else []
        else:
            raise DetError(f"--corrupt: unknown corruption '{item}'{did_you_mean(item, [*GROUPS, *GROUPS['all']])}")
    if not names:
        raise DetError("--corrupt: give corruption names (e.g. gaussian_noise,motion_blur) or 'benchmark'")
    return names


def parse_severities(spec: str) -> list[int]:
    """'1-5', '3' or '1,3,5' -> sorted severities in 1..5 (0, the clean run, always runs)."""
    out: set[int] = set()
    try:
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise DetError(f"--severity '{spec}': expected a range such as 1-5, or numbers such as 1,3,5") from None
    if not out or min(out) < 1 or max(out) > 5:
        raise DetError(f"--severity '{spec}': severities are 1 to 5 (the clean run, severity 0, always runs)")
    return sorted(out)


def _resource_filename(package: str, name: str) -> str:
    module = sys.modules.get(package) or importlib.import_module(package)
    return os.path.join(os.path.dirname(module.__file__), name)


def load_corrupt() -> Callable[..., np.ndarray]:
    """imagecorruptions' `corrupt`; a DetError with the install hint when it is missing. The package
    imports pkg_resources (gone from setuptools >= 81) for one function: a stand-in serves that
    import and is removed again."""
    standin = None
    if importlib.util.find_spec("pkg_resources") is None:
        standin = types.ModuleType("pkg_resources")
        standin.resource_filename = _resource_filename
        sys.modules["pkg_resources"] = standin
    try:
        from imagecorruptions import corrupt
    except ImportError as exc:
        raise DetError(f"{HINT} ({exc})") from None
    finally:
        if standin is not None and sys.modules.get("pkg_resources") is standin:
            del sys.modules["pkg_resources"]
    return corrupt


def summarize(clean: dict[str, float], table: dict[str, dict[int, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """P (clean), mPC (mean over corruptions x severities >= 1) and rPC = mPC / P per metric."""
    keys = [k for k, v in clean.items() if isinstance(v, (int, float))]
    runs = [m for per_sev in table.values() for sev, m in per_sev.items() if sev >= 1]
    mpc = {k: float(np.mean([m[k] for m in runs])) for k in keys}
    rpc = {k: (mpc[k] / clean[k] if clean[k] else float("nan")) for k in keys}
    return {"P": {k: float(clean[k]) for k in keys}, "mPC": mpc, "rPC": rpc}


def table_csv(table: dict[str, dict[int, dict[str, float]]], keys: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["corruption", "severity", *keys])
    for name, per_sev in table.items():
        for sev, m in sorted(per_sev.items()):
            writer.writerow([name, sev, *(f"{m[k]:.6f}" for k in keys)])
    return buf.getvalue()


def main_metric(metrics: dict[str, Any]) -> str:
    for key in ("coco/bbox_mAP", "coco/segm_mAP", "pascal_voc/mAP"):
        if key in metrics:
            return key
    return next(k for k, v in metrics.items() if isinstance(v, (int, float)))


def plot(path: Path, clean: dict[str, float], table: dict[str, dict[int, dict[str, float]]], summary: dict) -> Path:
    """The main metric against severity (0 = clean) per corruption, with P and mPC as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from det.core.fileio import atomic_write

    key = main_metric(clean)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, per_sev in table.items():
        sevs = [0, *sorted(per_sev)]
        ax.plot(sevs, [clean[key], *(per_sev[s][key] for s in sevs[1:])], marker="o", linewidth=1.2, label=name)
    ax.axhline(summary["P"][key], color="black", linewidth=1, linestyle="--", label=f"P {summary['P'][key]:.3f}")
    ax.axhline(summary["mPC"][key], color="red", linewidth=1, linestyle=":", label=f"mPC {summary['mPC'][key]:.3f}")
    ax.set(xlabel="severity (0 = clean)", ylabel=key, title=f"{key} under corruption (rPC {summary['rPC'][key]:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)
    return Path(path)


def with_corruption(cfg: dict, name: str, severity: int) -> dict:
    """A copy of the preset whose test pipeline corrupts each image right after loading it."""
    import copy

    cfg = copy.deepcopy(cfg)
    data = cfg.get("data") or {}
    section = data.get("test") or data.get("val")
    pipeline = (section or {}).get("pipeline")
    if not isinstance(pipeline, list):
        raise DetError("--corrupt: the preset's data.test (or data.val) has no pipeline to corrupt images in")
    at = next((k for k, t in enumerate(pipeline) if isinstance(t, dict) and t.get("type") in ("LoadImage", "LoadImageFromFile")), None)
    if at is None:
        raise DetError("--corrupt: the test pipeline has no LoadImage step to corrupt images after")
    pipeline.insert(at + 1, {"type": "Corrupt", "corruption": name, "severity": severity})
    return cfg


def robustness_test(cfg: dict, checkpoint: Path, corruptions: list[str], severities: list[int], work_dir: Path,
                    run: Callable[..., dict], force: bool = False) -> dict[str, Any]:
    """Clean run, then one run per corruption and severity (`run(cfg, checkpoint, work_dir=...)`,
    det test's runner); writes robustness.json, robustness.csv and robustness.png into `work_dir`."""
    from det.core.fileio import atomic_write_json, atomic_write_text, ensure_new

    load_corrupt()
    outputs = {n: work_dir / n for n in ("robustness.json", "robustness.csv", "robustness.png")}
    for path in outputs.values():
        ensure_new(path, force)
    np.random.seed(0)  # imagecorruptions draws from numpy's global generator
    clean = run(cfg, checkpoint, work_dir=work_dir / "clean")["metrics"]
    table: dict[str, dict[int, dict[str, float]]] = {}
    for name in corruptions:
        for sev in severities:
            res = run(with_corruption(cfg, name, sev), checkpoint, work_dir=work_dir / "corrupt" / f"{name}_{sev}")
            table.setdefault(name, {})[sev] = res["metrics"]
    summary = summarize(clean, table)
    keys = list(summary["P"])
    report = {**summary, "corruptions": corruptions, "severities": severities,
              "table": {n: {str(s): {k: m[k] for k in keys} for s, m in per.items()} for n, per in table.items()}}
    atomic_write_json(outputs["robustness.json"], report, indent=2)
    atomic_write_text(outputs["robustness.csv"], table_csv(table, keys))
    plot(outputs["robustness.png"], clean, table, summary)
    return {**report, "files": {k.replace(".", "_"): str(v) for k, v in outputs.items()}}
