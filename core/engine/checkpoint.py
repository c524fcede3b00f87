"""Checkpoint files: plain state dicts + the resolved preset + meta, written atomically and
loadable with `torch.load(weights_only=True)`.

Content of a det checkpoint:
    meta:          {epoch, iter, classes, det_version, time, seed, world_size, ...}
    preset:        the resolved preset (dict)
    state_dict:    model weights (EMA weights when an EMA was used: what `det test` evaluates)
    raw_state_dict: the training model's own weights when an EMA was used
    optimizer, scaler, ema, rng, loop, hooks: what `--resume` restores
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from det.core.errors import DetError
from det.core.fileio import atomic_torch_save, load_checkpoint
from det.core.log import get_logger

EPOCH_RE = re.compile(r"^(epoch|iter)_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors/ints (weights_only-loadable)."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    data_rng = _data_rng()
    if data_rng is not None:  # det's transform stream (128-bit ints: stored as JSON text)
        state["data"] = json.dumps(data_rng.get_state())
    return state


def _data_rng():
    import importlib

    try:
        return importlib.import_module("det.core.data.transforms.rng")
    except ImportError:
        return None


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    data_rng = _data_rng()
    if "data" in state and data_rng is not None:
        data_rng.set_state(json.loads(state["data"]))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def save(path: str | Path, payload: dict) -> Path:
    """Atomic save: the old file stays complete until the new one is fully written."""
    return atomic_torch_save(path, payload)


def find_latest(work_dir: str | Path) -> Path | None:
    """`last.pt` if present, else the newest `epoch_N.pt`/`iter_N.pt` in a work dir."""
    work_dir = Path(work_dir)
    if (work_dir / "last.pt").is_file():
        return work_dir / "last.pt"
    found = [(int(m.group(2)), p) for p in work_dir.glob("*.pt") if (m := EPOCH_RE.match(p.name))]
    return max(found)[1] if found else None


def weights_of(ckpt: dict, path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict of a det checkpoint (or of a bare state dict / MMDetection-style
    `{'state_dict': ...}` file)."""
    if "state_dict" in ckpt and isinstance(ckpt["state_dict"], dict):
        return ckpt["state_dict"]
    if "model" in ckpt and isinstance(ckpt["model"], dict):
        return ckpt["model"]
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise DetError(f"{path}: no model weights found (expected a 'state_dict' entry)")


def fit_weights(model: nn.Module, state: dict, path: str | Path, what: str = "the preset's model") -> None:
    """Load `state` into `model` exactly, or raise one DetError line with the count of missing,
    unexpected and wrongly shaped keys and the first few of them (a checkpoint of another
    architecture would otherwise make PyTorch print hundreds of lines)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{len(items)} {name} (first: {', '.join(items[:3])})"
                 for name, items in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if items]
        raise DetError(f"{path}: weights do not fit {what}: {'; '.join(parts)}")
    model.load_state_dict(state)


def load_matching(model: nn.Module, state: dict, label: str) -> tuple[dict[str, list[str]], int]:
    """det's one partial checkpoint-to-model copy (`--load-from`, backbone `init`): the tensors
    whose key and shape match are loaded, the rest reported on stderr after `label`;
    -> (missing / unexpected / mismatched keys, count loaded)."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    result = model.load_state_dict(usable, strict=False)
    report = {"missing": sorted(k for k in result.missing_keys if not k.endswith("num_batches_tracked")),
              "unexpected": sorted(k for k in state if k not in own),
              "mismatched": [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                             for k, v in state.items() if k in own and own[k].shape != v.shape]}
    log = get_logger()
    log.info(f"{label}: loaded {len(usable)}/{len(own)} tensors")
    for what, items in report.items():
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            log.warning(f"{label}: {len(items)} {what} key(s): {shown}")
    return report, len(usable)


def load_weights(model: nn.Module, path: str | Path, strict: bool = False) -> dict[str, list[str]]:
    """`--load-from`: copy matching weights, report missing/unexpected keys and shape mismatches
    on stderr; returns the report."""
    ckpt = load_checkpoint(path)
    state = weights_of(ckpt, path)
    report, _ = load_matching(model, state, f"--load-from {path}")
    if strict and any(report.values()):
        raise DetError(f"{path}: checkpoint does not match the model ({len(report['missing'])} missing, "
                       f"{len(report['unexpected'])} unexpected, {len(report['mismatched'])} mismatched)")
    return report
