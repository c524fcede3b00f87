"""Pieces every converter shares: output planning (no silent overwrite), per-file parallel maps
with a progress bar, image header reads, small text-format readers with errors that name the file."""
from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from det.core.errors import DataError, DetError
from det.core.fileio import atomic_write_json, atomic_write_text
from det.core.log import get_logger, make_progress

T = TypeVar("T")
R = TypeVar("R")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def plan_outputs(paths: Iterable[str | Path], force: bool) -> list[Path]:
    """Check every output before any work starts, so a run never stops half way on an existing
    file. Raises DetError naming the first existing path when `force` is off."""
    planned = [Path(p) for p in paths]
    if not force:
        for path in planned:
            if path.exists():
                raise DetError(f"{path}: already exists (use --force to overwrite)")
    return planned


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON write (compact, like the reference converters' dumps)."""
    return atomic_write_json(path, obj)


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write_text(path, text)


def require_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: {what} not found (expected a folder)")
    return path


def require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    return path


def parallel_map(fn: Callable[[T], R], items: Sequence[T], nproc: int, description: str,
                 min_parallel: int = 32) -> list[R]:
    """`[fn(x) for x in items]` in order, with a progress bar; over `nproc` processes when
    nproc > 1 and there are at least `min_parallel` items (a pool costs a fork per worker and
    pickling, more than cheap per-file work such as header reads saves on small inputs).
    `fn` must be a module-level function; a DetError raised in a worker reaches the caller."""
    items = list(items)
    results: list[R] = []
    nproc = max(1, int(nproc))
    with make_progress() as progress:
        task = progress.add_task(description, total=len(items), info="")
        if nproc == 1 or len(items) < max(2, min_parallel):
            for item in items:
                results.append(fn(item))
                progress.advance(task)
        else:
            chunk = max(1, min(64, len(items) // (nproc * 4)))
            with multiprocessing.get_context("fork").Pool(min(nproc, len(items))) as pool:
                for result in pool.imap(fn, items, chunksize=chunk):
                    results.append(result)
                    progress.advance(task)
    return results


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the image header (no full decode); DataError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return int(img.width), int(img.height)
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


def read_lines(path: str | Path, what: str) -> list[str]:
    """Non-empty, stripped lines of a text file."""
    path = require_file(path, what)
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def read_class_names(path: str | Path) -> list[str]:
    """One class name per line; duplicates are an error naming the line."""
    names = read_lines(path, "class list")
    seen: dict[str, int] = {}
    for lineno, name in enumerate(names, 1):
        if name in seen:
            raise DataError(f"{path}:{lineno}: duplicate class name '{name}' (first on line {seen[name]})")
        seen[name] = lineno
    if not names:
        raise DataError(f"{path}: class list is empty")
    return names


def check_box(xywh: Sequence[float], where: str, allow_empty: bool = False) -> list[float]:
    """A box [x, y, w, h] of finite numbers with positive (or, `allow_empty`, non-negative) size;
    DataError naming `where` otherwise. Converters call it before writing any box."""
    values = [float(v) for v in xywh]
    if not all(math.isfinite(v) for v in values):
        raise DataError(f"{where}: box {list(xywh)} has a non-finite number")
    if min(values[2:]) < 0 or (not allow_empty and min(values[2:]) <= 0):
        raise DataError(f"{where}: box {list(xywh)} has a {'negative' if allow_empty else 'non-positive'} width or height")
    return values


def number(value: float) -> int | float:
    """An int when the value is integral (keeps JSON close to the source), else the float."""
    value = float(value)
    return int(value) if value.is_integer() else value


def warn(message: str) -> None:
    get_logger().warning(message)


def present_modes(modes: Sequence[str], source: Callable[[str], Path], missing: str) -> list[str]:
    """The modes (train, val, ...) whose source file exists; a warning for each one skipped, and
    a DataError saying `missing` when none is there."""
    found = [m for m in modes if source(m).is_file()]
    for m in modes:
        if m not in found:
            warn(f"{source(m)} not found; {m} skipped")
    if not found:
        raise DataError(missing)
    return found


def summary(path: Path, **counts: Any) -> dict:
    """One row of a converter's report."""
    return {"file": str(path), **counts}
