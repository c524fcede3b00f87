"""A threaded reader that decodes images and video frames ahead of the model.

A producer thread walks the sources in order (videos frame by frame) and hands decoding plus an
optional `transform` (the test pipeline) to a small thread pool; the consumer receives results
in input order through a bounded queue, so reading overlaps the forward pass while memory stays
bounded by `prefetch` frames. OpenCV and numpy release the GIL while decoding and resizing.
"""
from __future__ import annotations

import io
import os
import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from det.core.inference.inputs import Source

_DONE = object()


@dataclass
class Frame:
    """One decoded image (or video frame). `image` is BGR uint8 (H, W, 3), None when `error`
    says why it could not be read; `payload` is `transform(frame)` computed in the reader."""

    source: Source
    name: str
    index: int = 0
    image: np.ndarray | None = None
    error: str | None = None
    fps: float | None = None
    payload: Any = None

    @property
    def path(self) -> str:
        return self.source.path


# Images whose header claims more pixels are refused before decoding (OpenCV would allocate
# width x height x 3 bytes first): 2**28 = a 16384 x 16384 image. DET_MAX_IMAGE_PIXELS changes it.
MAX_IMAGE_PIXELS = 2**28


def max_image_pixels() -> int:
    value = os.environ.get("DET_MAX_IMAGE_PIXELS", "")
    return int(value) if value.isdigit() and int(value) > 0 else MAX_IMAGE_PIXELS


def image_too_large(path: Any) -> str | None:
    """Why the image's header rules it out ('claims W x H pixels, more than N'), else None.
    Reads the header only; formats PIL does not know are left to the decoder."""
    from PIL import Image

    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        return f"header claims more than {2 * Image.MAX_IMAGE_PIXELS} pixels (PIL's decompression-bomb limit)"
    except Exception:  # noqa: BLE001 - unreadable headers are the decoder's to report
        return None
    if width * height > limit:
        return f"header claims {width} x {height} pixels, more than {limit} (DET_MAX_IMAGE_PIXELS)"
    return None


URL_TIMEOUT_S = 30.0


def _fetch(url: str) -> np.ndarray | None:
    """The bytes behind an http(s) image URL (None when it cannot be fetched)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as resp:  # noqa: S310 - http(s) only (is_url)
            return np.frombuffer(resp.read(), dtype=np.uint8)
    except (OSError, ValueError):
        return None


def read_image(path: str, flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray | None, str | None]:
    """(image, None), or (None, why it cannot be read): missing, empty, not an image, or a
    header that claims more than `max_image_pixels()`. An http(s) URL is fetched first."""
    from det.core.inference.inputs import is_url

    if is_url(path):
        data = _fetch(path)
        if data is None:
            return None, "cannot fetch the URL"
        header: Any = io.BytesIO(data.tobytes())
    else:
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            return None, f"cannot read ({exc.strerror or type(exc).__name__})"
        header = path
    if data.size == 0:
        return None, "empty file"
    too_large = image_too_large(header)
    if too_large:
        return None, too_large
    try:
        img = cv2.imdecode(data, flags)
    except cv2.error:
        img = None
    if img is None or not img.size:
        return None, "cannot decode image (corrupt or unsupported format)"
    return img, None


def imread(path: str) -> np.ndarray | None:
    """Decode an image file to BGR uint8; None when the file is not a decodable image."""
    return read_image(path)[0]


def video_fps(cap: cv2.VideoCapture, default: float = 25.0) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else default


class PrefetchReader:
    """Iterate `Frame`s of `sources` in order, decoded `prefetch` frames ahead by `workers`
    threads. Stops after `limit` frames when given. Use as a context manager or call close()."""

    def __init__(self, sources: list[Source], transform: Callable[[Frame], Any] | None = None,
                 prefetch: int = 8, workers: int = 2, limit: int | None = None) -> None:
        self.sources = sources
        self.transform = transform
        self.limit = limit
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="det-read")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- producer ---------------------------------------------------------------------------
    def _finish(self, frame: Frame) -> Frame:
        if frame.image is not None and self.transform is not None:
            frame.payload = self.transform(frame)
        return frame

    def _decode(self, source: Source) -> Frame:
        img, err = read_image(source.path)
        return self._finish(Frame(source=source, name=source.name, image=img, error=err))

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        count = 0
        try:
            for source in self.sources:
                if self.limit is not None and count >= self.limit:
                    break
                if source.kind == "video":
                    for frame in self._video_frames(source):
                        if self.limit is not None and count >= self.limit:
                            break
                        if not self._put(self._pool.submit(self._finish, frame) if frame.image is not None else _done_future(frame)):
                            return
                        count += frame.image is not None
                else:
                    if not self._put(self._pool.submit(self._decode, source)):
                        return
                    count += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            failed: Future = Future()
            failed.set_exception(exc)
            self._put(failed)
        finally:
            self._put(_DONE)

    def _video_frames(self, source: Source) -> Iterator[Frame]:
        # A camera index ('0') or a stream URL opens through OpenCV like a file.
        cap = cv2.VideoCapture(int(source.path) if source.path.isdigit() else source.path)
        try:
            if not cap.isOpened():
                yield Frame(source=source, name=source.name, error="cannot open video")
                return
            fps = video_fps(cap)
            index = 0
            while not self._stop.is_set():
                ok, img = cap.read()
                if not ok or img is None:
                    break
                yield Frame(source=source, name=f"{source.name}_{index:06d}", index=index, image=img, fps=fps)
                index += 1
            if index == 0:
                yield Frame(source=source, name=source.name, error="video has no readable frames")
        finally:
            cap.release()

    # -- consumer ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name="det-reader", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            yield item.result()

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock the producer
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "PrefetchReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _done_future(value: Any) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut
