"""Input discovery, the prefetching reader and the video writer."""
from __future__ import annotations

import io
import threading
import time

import cv2
import numpy as np
import pytest

from det.core.errors import DetError
from det.core.inference.inputs import discover, read_paths
from det.core.inference.reader import PrefetchReader, imread
from det.core.inference.video import VideoWriter


def _img(path, value=0, size=(24, 32)):
    img = np.full((*size, 3), value, np.uint8)
    assert cv2.imwrite(str(path), img)
    return img


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    _img(tmp_path / "d" / "b.jpg", 10)
    _img(tmp_path / "d" / "a.png", 20)
    _img(tmp_path / "d" / "sub" / "c.bmp", 30)
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    _img(tmp_path / "x.jpg", 40)
    return tmp_path


def test_folder_recursive_sorted_and_filtered(tree):
    srcs = discover([str(tree / "d")])
    assert [s.path for s in srcs] == [str(tree / "d" / n) for n in ("a.png", "b.jpg", "sub/c.bmp")]
    assert [s.name for s in srcs] == ["a", "b", "c"] and {s.kind for s in srcs} == {"image"}


def test_glob_files_and_order_kept(tree):
    srcs = discover([str(tree / "x.jpg"), str(tree / "d" / "*.jpg"), str(tree / "d" / "**" / "*.bmp")])
    assert [s.path for s in srcs] == [str(tree / "x.jpg"), str(tree / "d" / "b.jpg"), str(tree / "d" / "sub" / "c.bmp")]


def test_stdin_paths_and_duplicate_names(tree):
    (tree / "e").mkdir()
    _img(tree / "e" / "a.png", 1)
    stdin = io.StringIO(f"{tree / 'd' / 'a.png'}\n\n# a comment\n{tree / 'e' / 'a.png'}\n")
    srcs = discover(["-", str(tree / "x.jpg")], stdin=stdin)
    assert [s.name for s in srcs] == ["a", "a-2", "x"]
    assert read_paths(io.StringIO(" p1 \n\n#c\np2")) == ["p1", "p2"]


@pytest.mark.parametrize("bad,msg", [("missing.jpg", "input not found"), ("nomatch*.jpg", "matches no image"),
                                     ("d/notes.txt", "not an image or video")])
def test_bad_inputs_name_the_path(tree, bad, msg):
    with pytest.raises(DetError, match=msg) as info:
        discover([str(tree / bad)])
    assert str(tree / bad) in str(info.value)


def test_video_kind(tree):
    (tree / "v.mp4").write_bytes(b"")
    assert discover([str(tree / "v.mp4")])[0].kind == "video"


def test_reader_order_prefetch_corrupt_and_limit(tree):
    (tree / "d" / "bad.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    srcs = discover([str(tree / "d")])
    seen_threads = set()

    def transform(frame):
        seen_threads.add(threading.current_thread().name)
        time.sleep(0.01 * (3 - int(frame.image[0, 0, 0]) // 10 % 3))  # finish out of order
        return int(frame.image[0, 0, 0])

    with PrefetchReader(srcs, transform=transform, prefetch=2, workers=3) as reader:
        frames = list(reader)
    assert [f.name for f in frames] == ["a", "b", "bad", "c"]
    assert [f.payload for f in frames] == [20, 10, None, 30]
    assert frames[2].image is None and "cannot decode" in frames[2].error
    assert all(name.startswith("det-read") for name in seen_threads)
    with PrefetchReader(srcs, limit=2) as reader:
        assert [f.name for f in reader] == ["a", "b"]


def test_reader_transform_error_reaches_consumer(tree):
    def boom(frame):
        raise ValueError("pipeline failed")

    with PrefetchReader(discover([str(tree / "x.jpg")]), transform=boom) as reader, pytest.raises(ValueError, match="pipeline failed"):
        list(reader)


def test_reader_close_early_does_not_hang(tree):
    srcs = discover([str(tree / "d")] * 1) * 20
    reader = PrefetchReader(srcs, prefetch=1)
    it = iter(reader)
    next(it)
    start = time.time()
    reader.close()
    assert time.time() - start < 3


def test_video_roundtrip_every_frame_and_fps(tmp_path):
    path = tmp_path / "clip.avi"
    writer = VideoWriter(path, fps=7.0)
    for k in range(5):
        writer.write(np.full((32, 48, 3), 40 * k, np.uint8))
    writer.close()
    assert path.is_file() and not list(tmp_path.glob(".*partial*"))
    frames = list(PrefetchReader(discover([str(path)])))
    assert [f.name for f in frames] == [f"clip_{k:06d}" for k in range(5)]
    assert [f.index for f in frames] == list(range(5))
    assert all(abs(f.fps - 7.0) < 1e-3 for f in frames)
    assert [int(round(f.image.mean() / 40)) for f in frames] == list(range(5))
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


def test_video_writer_rejects_unknown_extension(tmp_path):
    with pytest.raises(DetError, match="unsupported video extension"):
        VideoWriter(tmp_path / "out.xyz")


def test_imread_corrupt_and_empty(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    (tmp_path / "c.png").write_bytes(b"\x89PNG garbage")
    assert imread(str(tmp_path / "e.png")) is None and imread(str(tmp_path / "c.png")) is None
    img = _img(tmp_path / "ok.png", 5)
    assert np.array_equal(imread(str(tmp_path / "ok.png")), img)
