"""`det.core.deploy.export`: every format and mode verified against PyTorch in its runtime, the
sidecar, refusals that write nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployfixtures import make_checkpoint, verified_graph

from det.core.deploy.export import ExportOptions, VerifyError, export_checkpoint
from det.core.errors import DetError

pytest.importorskip("onnxruntime")
IMGSZ = (64, 64)


@pytest.fixture(scope="module")
def rtm(tmp_path_factory) -> Path:
    return make_checkpoint("demo/rtmdet_tiny", tmp_path_factory.mktemp("rtm") / "rtm.pt")


def _export(ckpt: Path, out: Path, **kw) -> dict:
    return export_checkpoint(ckpt, ExportOptions(out=out, imgsz=IMGSZ, **kw), log=lambda _m: None)


def test_onnx_nms_in_graph_agrees_with_pytorch(rtm, tmp_path):
    out = tmp_path / "m.onnx"
    ops, meta = verified_graph(_export(rtm, out), out)
    assert "NonMaxSuppression" in ops
    assert meta["classes"] == ["circle", "square", "triangle", "star", "hexagon", "cross"]
    assert meta["input_size"] == [64, 64] and meta["nms"] is True and meta["outputs"] == ["boxes", "scores", "labels"]
    assert meta["normalize"]["mean"] and meta["postprocess"]["max_per_img"] > 0 and meta["preset"]["model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.det.json"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix,nms,batch", [("onnx", ".onnx", False, 1), ("openvino", ".xml", True, 2),
                                                  ("torchscript", ".torchscript", True, 1)])
def test_other_formats_and_raw_heads_verify(rtm, tmp_path, fmt, suffix, nms, batch):
    pytest.importorskip("openvino") if fmt == "openvino" else None
    rep = _export(rtm, tmp_path / f"m{suffix}", format=fmt, nms=nms, batch=batch)
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]
    assert all(Path(f).is_file() for f in rep["files"])


@pytest.mark.slow
@pytest.mark.parametrize("preset,sharpen", [("demo/retinanet_r18", 3.0), ("demo/fcos_r18", 30.0)])
def test_retinanet_and_fcos_export(tmp_path, preset, sharpen):
    ckpt = make_checkpoint(preset, tmp_path / "m.pt", sharpen=sharpen)
    rep = export_checkpoint(ckpt, ExportOptions(out=tmp_path / "m.onnx", imgsz=(128, 128)), log=lambda _m: None)
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]


def test_what_cannot_export_exits_2_and_writes_nothing(tmp_path):
    ckpt = make_checkpoint("demo/rtmdet_tiny", tmp_path / "soft.pt", overrides=("model.test_cfg.nms.type=soft_nms",))
    with pytest.raises(DetError, match="model.test_cfg.nms: soft_nms cannot be exported") as exc:
        _export(ckpt, tmp_path / "out" / "m.onnx")
    assert exc.value.exit_code == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_rtmdet_ins_exports_mask_logits_that_det_upsamples(tmp_path):
    ckpt = make_checkpoint("demo/rtmdet_ins_tiny", tmp_path / "ins.pt", sharpen=2.0)
    rep = _export(ckpt, tmp_path / "m.onnx")
    v = rep["verify"]
    assert v["ok"] and v["compared"] >= 10 and v["max_mask_diff"] is not None, v["summary"]
    assert json.loads((tmp_path / "m.onnx.det.json").read_text())["outputs"][-1] == "mask_logits"
    with pytest.raises(DetError, match="--no-nms: RTMDet-Ins"):
        _export(ckpt, tmp_path / "raw.onnx", nms=False)


@pytest.mark.slow
def test_yolox_export_agrees_with_pytorch(tmp_path):
    # random YOLOX box logits go through exp(): scaled down so boxes stay image-sized
    ckpt = make_checkpoint("demo/yolox_tiny", tmp_path / "y.pt", scales={"conv_reg": 0.05})
    rep = _export(ckpt, tmp_path / "m.onnx")
    assert rep["verify"]["ok"] and rep["verify"]["compared"] >= 20, rep["verify"]["summary"]
    assert json.loads((tmp_path / "m.onnx.det.json").read_text())["clip_boxes"] is False


def test_failed_verification_exits_1_and_writes_nothing(rtm, tmp_path, monkeypatch):
    import det.core.deploy.verify as verify

    monkeypatch.setattr(verify, "BOX_TOL", -1.0)
    with pytest.raises(VerifyError, match="max box diff") as exc:
        _export(rtm, tmp_path / "m.onnx")
    assert exc.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_refusals(rtm, tmp_path):
    (tmp_path / "m.onnx").write_text("mine")
    with pytest.raises(DetError, match="already exists"):
        _export(rtm, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_text() == "mine"
    with pytest.raises(DetError, match="--dynamic"):
        _export(rtm, tmp_path / "d.onnx", dynamic=True)
    with pytest.raises(DetError, match="--imgsz"):
        export_checkpoint(rtm, ExportOptions(out=tmp_path / "x.onnx", imgsz=(70, 64)), log=lambda _m: None)
    with pytest.raises(DetError, match="should end in .xml"):
        _export(rtm, tmp_path / "x.onnx", format="openvino")
