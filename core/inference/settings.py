"""The preset's `infer:` section: defaults for `det infer`.

Precedence, lowest first: det's built-in defaults, the preset's `infer:` section (the one
stored in the checkpoint, or `--preset`), `--set infer.KEY=V`, then explicit CLI options.

    infer:
      score_thr: 0.3     # drop predictions scoring below this
      batch_size: 1      # images per forward pass
      classes: null      # keep only these class names (a list)
      format: json       # json | jsonl | coco
      vis: true          # write drawn images
      pred: true         # write preds/<name>.json (format json)
      slice: null        # sliced inference: tile size in pixels
      overlap: 0.2       # tile overlap ratio
      merge: nms         # nms | wbf
      merge_iou: 0.5
      full: true         # with slice: also a downscaled whole-image pass
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from det.core.config.build import check_keys
from det.core.errors import ConfigError

INFER_DEFAULTS: dict[str, Any] = {
    "score_thr": 0.3, "batch_size": 1, "classes": None, "format": "json", "vis": True, "pred": True,
    "slice": None, "overlap": 0.2, "merge": "nms", "merge_iou": 0.5, "full": True,
}
_CHOICES = {"format": ("json", "jsonl", "coco"), "merge": ("nms", "wbf")}


def _number(key: str, value: Any, lo: float, hi: float | None, integer: bool = False, hi_open: bool = False) -> None:
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and value >= lo and (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        kind = "an integer" if integer else "a number"
        rng = f">= {lo:g}" + ("" if hi is None else f" and {'<' if hi_open else '<='} {hi:g}")
        raise ConfigError(f"infer.{key}: expected {kind} {rng}, got {value!r}")


def _check(key: str, value: Any) -> None:
    if key in ("score_thr", "merge_iou"):
        _number(key, value, 0.0, 1.0)
    elif key == "overlap":
        _number(key, value, 0.0, 1.0, hi_open=True)
    elif key == "batch_size" or (key == "slice" and value is not None):
        _number(key, value, 1, None, integer=True)
    elif key in ("vis", "pred", "full") and not isinstance(value, bool):
        raise ConfigError(f"infer.{key}: expected true or false, got {value!r}")
    elif key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"infer.{key}: expected one of {', '.join(_CHOICES[key])}, got {value!r}")
    elif key == "classes" and value is not None and not (
            isinstance(value, list) and all(isinstance(c, str) and c for c in value)):
        raise ConfigError(f"infer.classes: expected a list of class names, got {value!r}")


def infer_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The preset's `infer:` section over det's defaults, every key and value checked."""
    section = (cfg or {}).get("infer")
    if section is None:
        return dict(INFER_DEFAULTS)
    if not isinstance(section, Mapping):
        raise ConfigError(f"infer: expected a mapping, got {type(section).__name__}")
    out = dict(INFER_DEFAULTS)
    check_keys(section, INFER_DEFAULTS, where="infer")
    for key, value in section.items():
        _check(key, value)
        out[key] = value
    return out


def resolve(settings: Mapping[str, Any], explicit: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` with every CLI option the user gave (not None) on top."""
    return {**settings, **{k: v for k, v in explicit.items() if v is not None}}
