"""Safe file output: atomic writes (temp file in the same folder + rename), no silent overwrite,
checkpoints with torch.save of plain containers, loaded with weights_only=True."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from det.core.errors import DetError


def ensure_new(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing user file unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise DetError(f"{path}: already exists (use --force to overwrite)")
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(fh)` on a temp file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def strict_json(obj: Any) -> Any:
    """`obj` with every NaN or infinite float as None, so the JSON written is strict (RFC 8259)."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """json.dumps of `strict_json(obj)`; never writes NaN or Infinity."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = None) -> Path:
    return atomic_write_text(path, dumps_strict(obj, indent=indent) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """Load a det checkpoint (plain tensors and containers only)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DetError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means a bad file for the user
        raise DetError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; a missing file or a syntax error names the file (and line)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DetError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as exc:
        raise DetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


RUNS_ROOT = "runs"


def run_dirs(command: str, root: str | Path = RUNS_ROOT) -> list[Path]:
    """Existing `root/<command>/<n>` folders, in increasing n."""
    base = Path(root) / command
    found = [p for p in base.glob("*") if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return sorted(found, key=lambda p: int(p.name))


def new_run_dir(command: str, root: str | Path = RUNS_ROOT) -> Path:
    """Create and return the next `root/<command>/<n>` (1, 2, ...); never reuses a number, even
    when another process creates one at the same moment."""
    existing = run_dirs(command, root)
    n = int(existing[-1].name) + 1 if existing else 1
    while True:
        path = Path(root) / command / str(n)
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            n += 1
