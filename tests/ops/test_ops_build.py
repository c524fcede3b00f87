"""The extension is built from the current sources; a missing or stale build fails in one line."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import det.ops
from det.ops import _ext
from det.ops._source_hash import source_hash


def test_extension_matches_sources():
    csrc = Path(_ext.__file__).parent / "csrc"
    assert det.ops._C.SOURCE_HASH == source_hash(csrc)


def test_stale_build_fails_with_rebuild_command(monkeypatch):
    monkeypatch.setattr(det.ops._C, "SOURCE_HASH", "0" * 16)
    with pytest.raises(ImportError) as err:
        _ext._load()
    message = str(err.value)
    assert "stale" in message and "make setup" in message and "\n" not in message


def test_missing_build_fails_with_rebuild_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "det.ops._C", None)
    with pytest.raises(ImportError) as err:
        _ext._load()
    message = str(err.value)
    assert "missing" in message and "make setup" in message and "\n" not in message


def test_public_api():
    for name in ("nms", "batched_nms", "soft_nms", "batched_soft_nms", "roi_align", "bbox_overlaps",
                 "sigmoid_focal_loss", "weighted_boxes_fusion", "weighted_boxes_fusion_batch"):
        assert callable(getattr(det.ops, name)) and getattr(det.ops, name).__doc__


def test_cuda_sources_are_part_of_the_source_hash(tmp_path):
    """A change to a .cu kernel must make an existing build stale like a .cpp change does."""
    csrc = Path(_ext.__file__).parent / "csrc"
    cuda = sorted((csrc / "cuda").glob("*.cu"))
    assert {p.stem for p in cuda} >= {"soft_nms", "focal_loss"}
    copy = tmp_path / "csrc"
    shutil.copytree(csrc, copy)
    before = source_hash(copy)
    (copy / "cuda" / cuda[0].name).write_text(cuda[0].read_text() + "\n// edited\n")
    assert source_hash(copy) != before


def test_cpu_kernels_registered_and_cuda_kernels_only_in_cuda_builds():
    ops = ("nms", "batched_soft_nms", "sigmoid_focal_loss", "roi_align")
    assert all(_ext.has_kernel(op, "CPU") for op in ops)
    # CUDA kernels are compiled only with a CUDA toolkit (setup.py); this CPU build has none, so
    # the wrappers must take their fallbacks (torchvision, or the CPU kernel for Soft-NMS).
    if not torch.cuda.is_available():
        assert not any(_ext.has_kernel(op, "CUDA") for op in ("batched_soft_nms", "sigmoid_focal_loss"))


def test_gpu_check_says_no_gpu_with_exit_2():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the script would run its checks")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
    proc = subprocess.run([sys.executable, str(script), "--out", "/nonexistent/never"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "gpu_check: no CUDA device visible (torch.cuda.is_available() is False)"
