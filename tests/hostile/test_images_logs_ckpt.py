"""Huge-header images are skipped; NaN and half-written lines in logs; a checkpoint of another
architecture (issue 16, kinds 'resource limits', 'training that cannot learn', 'errors')."""
from __future__ import annotations

import json
import struct
import zlib

import cv2
import numpy as np
import pytest

from tests.hostile.conftest import assert_user_error


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.slow
def test_huge_header_image_is_skipped_in_a_folder_run(det_inproc, tiny_checkpoint, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "huge.png").write_bytes(_png_header(100_000, 100_000))
    (folder / "big.png").write_bytes(_png_header(30_000, 30_000))
    cv2.imwrite(str(folder / "ok.png"), np.zeros((48, 64, 3), np.uint8))
    r = det_inproc("infer", folder, "--weights", tiny_checkpoint, "--out-dir", tmp_path / "out", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["img_path"].endswith("ok.png") for line in r.stdout.splitlines()] == [True]
    flat = "".join(r.stderr.split())  # rich wraps long warnings
    assert "huge.png" in flat and "big.png" in flat and "pixels" in flat
    r = det_inproc("infer", folder / "huge.png", "--weights", tiny_checkpoint, "--out-dir", tmp_path / "o2", "--strict")
    assert_user_error(r, "huge.png", "header claims", "pixels")


@pytest.mark.slow
def test_checkpoint_of_another_architecture(det_inproc, tiny_checkpoint):
    r = det_inproc("test", "demo/fcos_r18", tiny_checkpoint)
    line = assert_user_error(r, str(tiny_checkpoint), "missing (first:", "unexpected (first:")
    assert len(line) < 600
    r = det_inproc("test", "demo/rtmdet_tiny", tiny_checkpoint, "--set", "model.backbone.widen_factor=0.5")
    assert_user_error(r, "of another shape (first: backbone.")


def test_resume_with_a_checkpoint_of_another_architecture(det_inproc, tiny_checkpoint, tmp_path):
    from tests.conftest import TINY_DEMO_OVERRIDES

    sets = [x for item in TINY_DEMO_OVERRIDES for x in ("--set", item)]
    r = det_inproc("train", "demo/rtmdet_tiny", "--resume", tiny_checkpoint, "--work-dir", tmp_path / "w",
                   "--device", "cpu", *sets, "--set", "model.backbone.widen_factor=0.5")
    line = assert_user_error(r, str(tiny_checkpoint), "weights do not fit this run's model", "of another shape (first: ")
    assert len(line) < 600
    assert not (tmp_path / "w" / "last.pt").exists()


def test_nan_losses_show_in_the_summary(det_inproc, tmp_path):
    log = tmp_path / "scalars.json"
    log.write_text('{"loss": 1.5, "step": 1, "epoch": 1, "iter": 1}\n{"loss": NaN, "step": 2, "epoch": 1, "iter": 2}\n'
                   '{"loss": 1.0, "step": 3, "epoch": 2, "iter": 1}\n{"loss": 0.9, "step": 4, "epo')
    r = det_inproc("analyze-logs", "summary", log, "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)[0]["keys"]["loss"]  # strict JSON: json.loads accepts NaN, so check the text
    assert "NaN" not in r.stdout.replace('"NaN"', "")
    assert row["non_finite"] == 1 and row["first_non_finite"] == {"value": "NaN", "epoch": 1, "step": 2.0}
    assert row["best"] == 1.0 and row["count"] == 3
    assert "scalars.json:4:lastlineisnotJSON" in "".join(r.stderr.split())  # rich wraps long warnings
    r = det_inproc("analyze-logs", "summary", log)
    assert r.returncode == 0 and "loss has 1 non-finite value(s), first NaN at epoch 1, step 2" in r.stderr


def test_bad_line_inside_a_log_is_still_an_error(det_inproc, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"loss": 1.5, "step": 1}\n{oops\n{"loss": 1.0, "step": 2}\n')
    assert_user_error(det_inproc("analyze-logs", "summary", log), "log.jsonl:2")
