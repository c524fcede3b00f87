"""Stream inputs: http(s) image and video URLs and camera indices become sources that OpenCV
(or a plain fetch, for image URLs) reads. A loopback HTTP server started by the test serves an
mp4 and a JPEG; nothing leaves 127.0.0.1."""
from __future__ import annotations

import functools
import http.server
import io
import threading

import cv2
import numpy as np
import pytest

from det.core.inference.inputs import discover, stream_source
from det.core.inference.runner import InferOptions, run_inference
from det.core.inference.video import VideoWriter

from infer_fakes import FakeDetector


@pytest.fixture
def server(tmp_path):
    """(base URL, folder) of a loopback HTTP server over `tmp_path/www`."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def _frame(i: int) -> np.ndarray:
    img = np.zeros((48, 64, 3), np.uint8)
    img[8:24, 4 + 4 * i:20 + 4 * i] = (0, 0, 255)  # a red square moving right
    return img


def test_stream_sources_are_recognised():
    assert stream_source("0") == ("video", "camera0")
    assert stream_source("rtsp://cam.local/live") == ("video", "live")
    assert stream_source("https://example.org/a/b/photo.JPG?x=1") == ("image", "photo")
    assert stream_source("http://example.org/clip.mp4") == ("video", "clip")
    assert stream_source("data/images") is None


def test_http_jpeg_and_mp4_through_infer(server, tmp_path):
    base, www = server
    ok, buf = cv2.imencode(".jpg", _frame(0))
    (www / "still.jpg").write_bytes(buf.tobytes())
    writer = VideoWriter(www / "clip.mp4", fps=10)
    for i in range(5):
        writer.write(_frame(i))
    writer.close()
    video_frames = cv2.VideoCapture(str(www / "clip.mp4"))
    assert video_frames.isOpened()
    video_frames.release()
    sources = discover([f"{base}/still.jpg", f"{base}/clip.mp4"])
    assert [(s.kind, s.name) for s in sources] == [("image", "still"), ("video", "clip")]
    stream = io.StringIO()
    summary = run_inference(FakeDetector(), sources, InferOptions(out_dir=tmp_path / "o", format="jsonl", vis=False,
                                                                 stdout=stream))
    records = [__import__("json").loads(line) for line in stream.getvalue().splitlines()]
    if summary.skipped:  # OpenCV without a network-capable backend cannot open http video
        pytest.fail(f"skipped inputs: {summary.skipped}")
    assert summary.images == 6 and len(records) == 6
    assert records[0]["img_path"] == f"{base}/still.jpg" and records[0]["class_names"] == ["red"]
    xs = [r["bboxes"][0][0] for r in records[1:]]
    assert xs == sorted(xs) and xs[-1] - xs[0] >= 12  # the square moves right over the frames
    assert [r["frame"] for r in records[1:]] == [0, 1, 2, 3, 4]


def test_missing_url_is_a_skipped_input(server, tmp_path):
    base, _ = server
    summary = run_inference(FakeDetector(), discover([f"{base}/nothing.jpg"]),
                            InferOptions(out_dir=tmp_path / "o", format="jsonl", vis=False, stdout=io.StringIO()))
    assert summary.images == 0 and summary.skipped == [f"{base}/nothing.jpg"]
