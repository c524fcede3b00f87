"""Safe file output: atomic writes (temp file in the same folder + rename), no silent overwrite,
checkpoints with torch.save of plain containers, loaded with weights_only=True."""
from __future__ import annotations

import glob
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from det.core.errors import DetError


def ensure_new(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing user file unless `force`, and fail now (not after the
    work) when the file could not be written there."""
    path = Path(path)
    if path.exists() and not force:
        raise DetError(f"{path}: already exists (use --force to overwrite)")
    if path.is_dir():
        raise DetError(f"{path}: is a folder; expected a file name")
    ensure_writable_folder(path.parent)
    return path


def ensure_writable_folder(folder: str | Path) -> Path:
    """The folder exists and is writable, or can be created: its nearest existing ancestor is a
    writable folder. Otherwise a DetError naming the path that blocks it."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: creating below it fails
            raise DetError(f"{probe}: a broken symbolic link; cannot create {folder}")
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise DetError(f"{probe}: not a folder; cannot write into {folder}")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise DetError(f"{probe}: not writable (permission denied)")
    return folder


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(fh)` on a temp file beside `path`, fsync, then rename over `path`. The file
    gets the mode a plain `open` would (0666 less the umask); the temp file goes on failure, and
    temp files of earlier writers of `path` that died (kill -9) go on the next write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a full disk names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clean_stale_temps(path: Path) -> list[Path]:
    """Remove `.NAME.PID.*.tmp` files beside `path` whose writing process no longer exists."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    """Strict JSON: NaN or Infinity becomes null (RFC 8259), never a bare `NaN`."""
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
        raise DetError(f"{path}: not a loadable checkpoint ({first_line(exc)})") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; a missing file or a syntax error names the file (and line)."""
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def read_xml(path: str | Path, what: str = "XML file", error: type[DetError] = DetError) -> Any:
    """The root element of an XML file; a missing file or a syntax error names the file (and line)."""
    import xml.etree.ElementTree as ET

    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except ET.ParseError as exc:
        raise error(f"{path}:{exc.position[0]}: invalid XML ({exc})") from None


def read_text(path: str | Path, what: str = "text file", error: type[DetError] = DetError) -> str:
    """A UTF-8 text file; missing, a folder, binary or unreadable -> `error` naming the path."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; expected a {what}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (not UTF-8); expected a {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None


def first_line(exc: BaseException, limit: int = 200) -> str:
    """'Type: first line of the message' (just 'Type' when the message is empty)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__


def inside(root: str | Path, name: str | Path, where: str, follow_links: bool = True) -> Path:
    """`root / name` for a `name` read from a data file (an image name, a split, a sequence):
    a DetError naming `where` when it is absolute, climbs out with '..', or (with
    `follow_links`) resolves through a symlink to a place outside `root`."""
    text = str(name).replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise DetError(f"{where}: path {str(name)!r} is absolute; expected a path inside"
                       + (" its folder" if str(root) == "." else f" {root}"))
    rel = os.path.normpath(text)
    if rel == ".." or rel.startswith("../") or rel == ".":
        raise DetError(f"{where}: path {str(name)!r} leaves its folder" + ("" if str(root) == "." else f" {root}"))
    joined = Path(root) / rel
    if follow_links:
        real_root = os.path.realpath(root)
        real = os.path.realpath(joined)
        if os.path.commonpath([real_root, real]) != real_root:
            raise DetError(f"{where}: path {str(name)!r} leads outside {root} (through a symlink, to {real})")
    return joined


def plain_name(value: str, what: str) -> str:
    """A single file-name component (a split name, a sequence name): no separators, not '.'/'..'."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise DetError(f"{what}: {value!r} must be a plain name (no '/', not '.' or '..')")
    return value


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
