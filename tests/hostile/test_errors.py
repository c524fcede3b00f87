"""OS errors and broken files are one-line user errors (issue 16, kind 'errors')."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np

from tests.hostile.conftest import assert_user_error, box, image, write_coco


def test_zero_byte_checkpoint(det_inproc, tmp_path):
    ckpt = tmp_path / "zero.pt"
    ckpt.write_bytes(b"")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16, 3), np.uint8))
    r = det_inproc("infer", tmp_path / "a.png", "--weights", ckpt, "--out-dir", tmp_path / "out")
    assert_user_error(r, "zero.pt", "not a loadable checkpoint")
    assert not (tmp_path / "out").exists()


def test_debug_keeps_the_exit_code(tmp_path):
    ckpt = tmp_path / "zero.pt"
    ckpt.write_bytes(b"")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16, 3), np.uint8))
    r = subprocess.run([sys.executable, "-m", "det.cli", "--debug", "infer", str(tmp_path / "a.png"), "--weights", str(ckpt)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error: ")


def test_output_below_a_file(det_inproc, tmp_path):
    ann = write_coco(tmp_path / "ann.json", [image()], [box()])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = det_inproc("convert", "coco2yolo", ann, "--out-dir", blocker / "sub")
    assert_user_error(r, str(blocker))


def test_binary_and_folder_inputs(det_inproc, tmp_path):
    binary = tmp_path / "log.jsonl"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    assert_user_error(det_inproc("analyze-logs", "summary", binary), "log.jsonl", "not a text file")
    gt = write_coco(tmp_path / "gt.json", [image()], [box()])
    assert_user_error(det_inproc("eval", binary, "--ann", gt), "log.jsonl", "not a text file")
    assert_user_error(det_inproc("eval", tmp_path, "--ann", gt), str(tmp_path), "folder")


def test_unwritable_outputs_fail_before_the_work(det_inproc, tiny_checkpoint, tmp_path, monkeypatch):
    """An output path below a file is refused before any model is built or data read."""
    import det.core.models as models

    blocker = tmp_path / "file"
    blocker.write_text("x")

    def no_build(*args, **kwargs):
        raise AssertionError("built a model before checking the outputs")

    monkeypatch.setattr(models, "build_detector", no_build)
    r = det_inproc("test", tiny_checkpoint, "--work-dir", blocker / "w", "--device", "cpu")
    assert_user_error(r, str(blocker), "not a folder")
    r = det_inproc("test", tiny_checkpoint, "--out", blocker / "r.json", "--work-dir", tmp_path / "t", "--device", "cpu")
    assert_user_error(r, str(blocker), "not a folder")
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", blocker / "w", "--device", "cpu")
    assert_user_error(r, str(blocker), "not a folder")
    assert blocker.read_text() == "x" and not (tmp_path / "t").exists()
