"""Atomic writes leave no temp file and respect the umask; weight converters that map nothing
write nothing (issue 16, kind 'files'). Checkpoint pruning and `det train --force` on an old
work dir: tests/hostile/test_checkpoints.py."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from det.core.fileio import atomic_write, atomic_write_json
from tests.hostile.conftest import assert_user_error, box, files_under, image, write_coco


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_outputs_respect_the_umask(det_inproc, tmp_path, mask):
    ann = write_coco(tmp_path / "ann.json", [image()], [box()])
    old = os.umask(mask)
    try:
        r = det_inproc("convert", "coco2yolo", ann, "--out-dir", tmp_path / "y")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    for name in ("data.yaml", "train.txt", "labels/train/a.txt"):
        assert stat.S_IMODE((tmp_path / "y" / name).stat().st_mode) == 0o666 & ~mask


def test_failed_write_leaves_no_temp_and_stale_temps_go(tmp_path):
    target = tmp_path / "out.json"

    def boom(fh):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, boom)
    assert files_under(tmp_path) == []
    dead = tmp_path / ".out.json.999999999.abc.tmp"  # a writer killed with -9 (no such pid)
    dead.write_bytes(b"half")
    alive = tmp_path / f".out.json.{os.getpid()}.abc.tmp"  # a writer still running
    alive.write_bytes(b"busy")
    atomic_write_json(target, {"a": 1})
    assert sorted(files_under(tmp_path)) == sorted([alive.name, "out.json"])


def test_strict_json_never_writes_nan(tmp_path):
    """Non-finite numbers become null (RFC 8259 JSON); never a bare NaN or Infinity."""
    import json

    atomic_write_json(tmp_path / "x.json", {"score": float("nan"), "area": float("inf"), "ok": 1.5})
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {"score": None, "area": None, "ok": 1.5}
    assert files_under(tmp_path) == ["x.json"]  # no temporary file left beside it


def test_weight_converter_mapping_nothing(det_inproc, tmp_path):
    src = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"foo.weight": torch.zeros(3)}}, src)
    out = tmp_path / "conv.pt"
    r = det_inproc("convert", "mmdet-weights", src, out, "--preset", "demo/rtmdet_tiny")
    assert_user_error(r, "foreign.pth", "no tensor maps", "--allow-empty")
    assert not out.exists()
    r = det_inproc("convert", "mmdet-weights", src, out, "--preset", "demo/rtmdet_tiny", "--allow-empty")
    assert r.returncode == 0 and out.is_file()


def test_full_disk_is_a_user_error_naming_the_file(det_inproc, tmp_path, monkeypatch):
    import det.core.fileio as fileio

    def full(fd):
        raise OSError(28, "No space left on device")

    ann = write_coco(tmp_path / "ann.json", [image()], [box()])
    monkeypatch.setattr(fileio.os, "fsync", full)
    r = det_inproc("convert", "coco2yolo", ann, "--out-dir", tmp_path / "y")
    line = assert_user_error(r, "No space left on device")
    assert str(tmp_path / "y") in line
    assert not [p for p in files_under(tmp_path) if p.endswith(".tmp")]
