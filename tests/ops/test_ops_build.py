"""The extension is built from the current sources; a missing or stale build fails in one line."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
