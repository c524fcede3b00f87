"""Writing drawn frames to a video file with OpenCV at the source frame rate."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from det.core.errors import DetError

# Codecs that OpenCV's bundled FFmpeg writes without extra libraries.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoWriter:
    """Opened on the first frame (its size fixes the video size; later frames of another size
    are resized). Written to a temp file beside `path` and renamed on close, so an interrupted
    run never leaves a half-written video under the user's name."""

    def __init__(self, path: str | Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in _FOURCC:
            raise DetError(f"{self.path}: unsupported video extension (use one of {', '.join(sorted(_FOURCC))})")
        self.fps = float(fps)
        self.fourcc = _FOURCC[ext]
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{ext}")
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self.size = (w, h)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self.size)
            if not self._writer.isOpened():
                raise DetError(f"{self.path}: OpenCV cannot write this video format")
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)
