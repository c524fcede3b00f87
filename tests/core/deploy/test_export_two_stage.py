"""Two-stage export (Faster / Mask / Cascade R-CNN): RPN proposals, RoIAlign, box decoding,
per-class NMS and RoI masks in the graph, verified against PyTorch in each runtime."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployfixtures import assert_refusals, make_checkpoint, verified_graph

from det.core.deploy.export import ExportOptions, export_checkpoint

pytest.importorskip("onnxruntime")
IMGSZ = (64, 64)


def _export(ckpt: Path, out: Path, **kw) -> dict:
    return export_checkpoint(ckpt, ExportOptions(out=out, imgsz=IMGSZ, **kw), log=lambda _m: None)


@pytest.fixture(scope="module")
def frcnn(tmp_path_factory) -> Path:
    return make_checkpoint("demo/faster_rcnn_r18", tmp_path_factory.mktemp("frcnn") / "frcnn.pt")


def test_faster_rcnn_onnx_agrees_with_pytorch(frcnn, tmp_path):
    out = tmp_path / "m.onnx"
    ops, meta = verified_graph(_export(frcnn, out), out)
    assert {"NonMaxSuppression", "RoiAlign"} <= ops
    assert meta["family"] == "FasterRCNN" and meta["outputs"] == ["boxes", "scores", "labels"]
    assert set(meta["postprocess"]) == {"rpn", "rcnn"}


@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix,batch", [("openvino", ".xml", 2), ("torchscript", ".torchscript", 1)])
def test_faster_rcnn_other_formats(frcnn, tmp_path, fmt, suffix, batch):
    pytest.importorskip("openvino") if fmt == "openvino" else None
    rep = _export(frcnn, tmp_path / f"m{suffix}", format=fmt, batch=batch)
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]


@pytest.mark.slow
def test_mask_rcnn_exports_roi_masks_that_det_pastes(tmp_path):
    ckpt = make_checkpoint("demo/mask_rcnn_r18", tmp_path / "mrcnn.pt")
    # 128 px: proposals up to 128 px are pooled from two FPN levels
    rep = export_checkpoint(ckpt, ExportOptions(out=tmp_path / "m.onnx", imgsz=(128, 128)), log=lambda _m: None)
    v = rep["verify"]
    assert v["ok"] and v["compared"] >= 20 and v["max_mask_diff"] is not None, v["summary"]
    meta = json.loads((tmp_path / "m.onnx.det.json").read_text())
    assert meta["outputs"] == ["boxes", "scores", "labels", "masks"]


CASCADE_SMALL = ("model.backbone.init=null", "model.backbone.depth=18", "model.neck.in_channels=[64,128,256,512]",
                 "model.neck.out_channels=32", "model.rpn_head.in_channels=32", "model.rpn_head.feat_channels=32",
                 "model.roi_head.bbox_roi_extractor.out_channels=32",
                 *[f"model.roi_head.bbox_head.{i}.{kv}" for i in range(3)
                   for kv in ("in_channels=32", "fc_out_channels=128", "num_classes=6")])


@pytest.mark.slow
def test_cascade_rcnn_stages_refine_in_the_graph(tmp_path):
    ckpt = make_checkpoint("cascade_rcnn", tmp_path / "c.pt", overrides=CASCADE_SMALL, roi_sharpen=200)
    rep = _export(ckpt, tmp_path / "m.onnx")
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]


def test_two_stage_refusals_write_nothing(frcnn, tmp_path):
    assert_refusals(_export, frcnn, tmp_path, "two-stage")
