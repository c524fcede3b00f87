"""DETR-family export: the grid_sample decomposition of deformable attention (ONNX GridSample),
the padding mask computed in the graph, the heads' top-k post-processing; verified against
PyTorch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deployfixtures import assert_refusals, make_checkpoint

from det.core.deploy.export import ExportOptions, export_checkpoint

pytest.importorskip("onnxruntime")
IMGSZ = (128, 128)  # DINO's 100 queries need >= 100 cells over its 4 levels


@pytest.fixture(scope="module")
def dino(tmp_path_factory) -> Path:
    return make_checkpoint("demo/dino_r18", tmp_path_factory.mktemp("dino") / "dino.pt")


def _export(ckpt: Path, out: Path, imgsz=IMGSZ, **kw) -> dict:
    return export_checkpoint(ckpt, ExportOptions(out=out, imgsz=imgsz, **kw), log=lambda _m: None)


@pytest.mark.slow
def test_dino_onnx_grid_sample_agrees_with_pytorch(dino, tmp_path):
    import onnx

    rep = _export(dino, tmp_path / "m.onnx")
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "GridSample" in ops and "TopK" in ops


@pytest.mark.slow
def test_dino_padding_mask_in_graph_matches_pytorch(dino, tmp_path):
    """A 96 x 128 image padded to the 128 x 128 input: the graph's mask must equal det's padding_masks."""
    from deployfixtures import shapes_image

    from det.core.apis.detector import Detector
    from det.core.deploy.export import fit_pipeline
    from det.core.deploy.verify import compare
    from det.core.apis.backends import load_detector

    _export(dino, tmp_path / "m.onnx", verify=False)
    img = np.ascontiguousarray(shapes_image(3, 128)[:96])
    ref_det = Detector.from_checkpoint(dino, device="cpu", score_thr=0.0)
    fit_pipeline(ref_det, IMGSZ)
    got_det = load_detector(tmp_path / "m.onnx", backend="onnxruntime", score_thr=0.0)
    # PyTorch pads the 96 x 128 image to 128 x 128 when it shares a batch with a full-size one
    prepared = [ref_det.preprocess(img), ref_det.preprocess(shapes_image(4, 128))]
    inputs, samples = ref_det.collate(prepared)
    assert tuple(inputs.shape[-2:]) == IMGSZ and tuple(samples[0].img_shape[:2]) == (96, 128)
    ref = ref_det.forward(inputs, samples)[0]
    inputs, samples = got_det.collate(prepared[:1])
    got = got_det.forward(inputs, samples)[0]
    stats = compare(ref, got, 0.0, 100)
    assert not stats["problems"] and stats["compared"] >= 20, stats
    assert stats["box"] <= 1e-2 and stats["score"] <= 1e-3


@pytest.mark.slow
def test_detr_onnx_agrees_with_pytorch(tmp_path):
    small = ("model.backbone.init=null", "model.backbone.depth=18", "model.neck.in_channels=[512]",
             "model.encoder.num_layers=2", "model.decoder.num_layers=2")
    ckpt = make_checkpoint("detr/detr_r50_8xb2-150e_coco", tmp_path / "detr.pt", overrides=small, roi_sharpen=5.0)
    rep = _export(ckpt, tmp_path / "m.onnx", imgsz=(64, 64))
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]


def test_detr_refusals_write_nothing(dino, tmp_path):
    assert_refusals(_export, dino, tmp_path, "DETR-family")


@pytest.mark.slow
def test_deformable_detr_refine_two_stage_onnx_agrees_with_pytorch(tmp_path):
    small = ("model.backbone.init=null", "model.backbone.depth=18", "model.neck.in_channels=[128,256,512]",
             "model.encoder.num_layers=2", "model.decoder.num_layers=2")
    ckpt = make_checkpoint("deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco", tmp_path / "d.pt",
                           overrides=small)
    rep = _export(ckpt, tmp_path / "m.onnx")
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]
