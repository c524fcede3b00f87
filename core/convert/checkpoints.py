"""Checkpoint files between training and release: `publish` (weights only, CPU, hashed name) and
a safe reader for checkpoints written by other toolkits.

A det checkpoint (det.core.engine.checkpoint) holds `state_dict` (EMA weights when an EMA was
used), `preset`, `meta` and the training state (`optimizer`, `scaler`, `ema`, `rng`, `loop`,
`hooks`, `raw_state_dict`); publishing keeps only the first three.
"""
from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

from det.core.errors import DetError
from det.core.fileio import atomic_write, ensure_new, first_line, load_checkpoint
from det.core.log import get_logger

KEEP_KEYS = ("state_dict", "preset", "meta")


def _to_cpu(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone() if obj.device.type != "cpu" else obj.detach()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def hashed_name(out: str | Path, digest: str) -> Path:
    """`OUT.pt` -> `OUT-{first 8 hex of sha256}.pt` (.pt when OUT has no suffix)."""
    out = Path(out)
    suffix = out.suffix or ".pt"
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}-{digest[:8]}{suffix}")


def publish(src: str | Path, out: str | Path, force: bool = False) -> dict:
    """Keep `state_dict`, `preset` and `meta` (CPU tensors), write `OUT-<sha8>.pt` atomically."""
    import torch

    ckpt = load_checkpoint(src)
    if not isinstance(ckpt, dict):
        raise DetError(f"{src}: not a checkpoint dict")
    if "state_dict" not in ckpt:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            ckpt = {"state_dict": ckpt}  # a bare state dict
        else:
            raise DetError(f"{src}: no 'state_dict' entry (keys: {', '.join(map(str, list(ckpt)[:10]))})")
    kept = {k: _to_cpu(ckpt[k]) for k in KEEP_KEYS if k in ckpt}
    dropped = sorted(str(k) for k in ckpt if k not in KEEP_KEYS)
    buffer = io.BytesIO()
    torch.save(kept, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    final = ensure_new(hashed_name(out, digest), force)
    atomic_write(final, lambda fh: fh.write(data))
    get_logger().info(f"published {final} ({len(data) / 2**20:.1f} MiB; dropped: {', '.join(dropped) or 'nothing'})")
    return {"file": str(final), "sha256": digest, "kept": list(kept), "dropped": dropped,
            "tensors": len(kept["state_dict"]), "bytes": len(data)}


class _Opaque:
    """Stands in for a class a foreign checkpoint names but det does not need (mmengine's
    HistoryBuffer, numpy dtypes in `meta`, ...): it swallows its arguments and state, so no
    foreign code runs while unpickling."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_Opaque":
        return _Opaque()


def _opaque_stand_ins(path: Path) -> list[type]:
    """One `_Opaque` subclass per foreign global the checkpoint names, carrying that global's
    module and name, so torch's weights_only unpickler accepts them without importing (or
    running) anything from the other toolkit."""
    import torch

    stand_ins = []
    for qualified in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)):
        module, _, name = qualified.rpartition(".")
        stand_ins.append(type(name, (_Opaque,), {"__module__": module, "__qualname__": name}))
    return stand_ins


def load_foreign_checkpoint(path: str | Path) -> dict:
    """A checkpoint from another toolkit: `weights_only=True` first; if the file names other
    classes (MMDetection keeps mmengine objects in `meta`/`message_hub`), reload it with an
    `weights_only=True` whose unknown globals are opaque stand-ins: only tensors and containers are
    built, nothing of the other toolkit is imported or run."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DetError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as exc:  # noqa: BLE001 - anything else means the file itself is broken
        raise DetError(f"{path}: not a loadable checkpoint ({first_line(exc)})") from None
    try:
        with torch.serialization.safe_globals(_opaque_stand_ins(path)):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DetError(f"{path}: not a loadable checkpoint ({first_line(exc)})") from None
    get_logger().info(f"{path}: non-tensor objects outside the weights were skipped")
    return ckpt


def state_dict_of(ckpt: Any, path: str | Path) -> dict:
    """The weights of a checkpoint: `state_dict`, `model` or a bare state dict."""
    import torch

    if isinstance(ckpt, dict):
        for key in ("state_dict", "model"):
            if isinstance(ckpt.get(key), dict):
                ckpt = ckpt[key]
                break
        tensors = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise DetError(f"{path}: no model weights found (expected 'state_dict', 'model' or a bare state dict)")
