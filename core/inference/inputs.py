"""Turn what users type (files, folders, globs, videos, `-` for paths on stdin) into an ordered
list of image and video sources, failing early and by name on anything missing."""
from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from det.core.errors import DetError

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jp2"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
_GLOB_CHARS = set("*?[")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")


@dataclass(frozen=True)
class Source:
    """One input: `kind` is 'image' or 'video' (files, URLs, camera indices: OpenCV opens
    them alike); `name` is unique among the sources and names the output files
    (preds/<name>.json, vis/<name>.jpg)."""

    path: str
    kind: str
    name: str


def kind_of(path: str | Path) -> str | None:
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    return None


def _walk(folder: Path) -> list[Path]:
    """Image and video files under `folder`, recursive, sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for fn in filenames:
            if not fn.startswith(".") and kind_of(fn) is not None:
                found.append(Path(dirpath) / fn)
    return sorted(found)


def is_url(item: str) -> bool:
    return item.lower().startswith(STREAM_SCHEMES)


def stream_source(item: str) -> tuple[str, str] | None:
    """(kind, name) of a camera index ('0') or a stream/URL input; None for anything else.
    A URL whose path ends in an image extension is one image, any other URL a video stream."""
    if item.isdigit() and not Path(item).exists():
        return "video", f"camera{item}"
    if not is_url(item):
        return None
    from urllib.parse import urlparse

    url_path = Path(urlparse(item).path)
    name = url_path.stem or urlparse(item).hostname or "stream"
    return ("image" if url_path.suffix.lower() in IMAGE_EXTS else "video"), name


def _expand(item: str) -> list[Path]:
    path = Path(item)
    if path.is_dir():
        files = _walk(path)
        if not files:
            raise DetError(f"{item}: folder holds no image or video files")
        return files
    if path.is_file():
        if kind_of(path) is None:
            raise DetError(f"{item}: not an image or video file (extensions: {', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))})")
        return [path]
    if _GLOB_CHARS & set(item):
        files: list[Path] = []
        for match in sorted(glob.glob(item, recursive=True)):
            m = Path(match)
            files.extend(_walk(m) if m.is_dir() else [m] if kind_of(m) else [])
        if not files:
            raise DetError(f"{item}: pattern matches no image or video files")
        return files
    raise DetError(f"{item}: input not found")


def read_paths(stream: TextIO) -> list[str]:
    """Paths from a text stream, one per line; blank lines and '#' comments are skipped."""
    return [line.strip() for line in stream if line.strip() and not line.lstrip().startswith("#")]


def discover(inputs: Iterable[str], stdin: TextIO | None = None) -> list[Source]:
    """Expand INPUT arguments in the order given. `-` reads more inputs from `stdin`.

    Raises DetError naming the first input that is missing, unreadable or matches nothing.
    """
    items: list[str] = []
    for item in inputs:
        if item == "-":
            items.extend(read_paths(stdin if stdin is not None else sys.stdin))
        else:
            items.append(item)
    if not items:
        raise DetError("no inputs given (pass image files, folders, globs, videos or '-' for paths on stdin)")
    sources: list[Source] = []
    taken: set[str] = set()
    for item in items:
        stream = stream_source(item)
        if stream is not None:
            name, k = stream[1], 2
            while name in taken:
                name, k = f"{stream[1]}-{k}", k + 1
            taken.add(name)
            sources.append(Source(path=item, kind=stream[0], name=name))
            continue
        for path in _expand(item):
            name, k = path.stem, 2
            while name in taken:  # same file name in two folders: a-2, a-3, ...
                name, k = f"{path.stem}-{k}", k + 1
            taken.add(name)
            sources.append(Source(path=str(path), kind=kind_of(path) or "image", name=name))
    return sources
