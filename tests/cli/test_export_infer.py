"""`det export` then `det infer --backend torch|onnxruntime|openvino`: the JSON Lines of the
three backends agree (boxes within 1e-2 px, scores within 1e-3, same labels)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "deploy"))
from deployfixtures import agree, make_checkpoint, shapes_image  # noqa: E402

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


def _records(stdout: str) -> dict[str, dict]:
    recs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {Path(r["img_path"]).name: r for r in recs}


def test_three_backends_agree(tmp_path, det_inproc):
    ckpt = make_checkpoint("demo/rtmdet_tiny", tmp_path / "rtm.pt")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        cv2.imwrite(str(imgs / f"{i}.png"), shapes_image(i, 96))  # resized to the export size, 192
    r = det_inproc("export", ckpt, "--format", "onnx", "--out", tmp_path / "m.onnx", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["verify"]["ok"] and rep["files"][-1].endswith("m.onnx.det.json")
    r = det_inproc("export", ckpt, "--format", "openvino", "--out", tmp_path / "m.xml", "--no-verify")
    assert r.returncode == 0, r.stderr
    outs = {}
    for backend, weights in (("torch", ckpt), ("onnxruntime", tmp_path / "m.onnx"), ("openvino", tmp_path / "m.xml")):
        r = det_inproc("infer", imgs, "--weights", weights, "--backend", backend, "--format", "jsonl", "--no-vis",
                       "--score-thr", "0.2", "--batch-size", "2", "--out-dir", tmp_path / backend)
        assert r.returncode == 0, r.stderr
        outs[backend] = _records(r.stdout)
    assert sorted(outs["torch"]) == ["0.png", "1.png", "2.png"]
    assert sum(len(rec["scores"]) for rec in outs["torch"].values()) >= 10
    for backend in ("onnxruntime", "openvino"):
        for name, rec in outs["torch"].items():
            agree(rec, outs[backend][name], 0.2)


def test_export_errors(tmp_path, det_inproc):
    ckpt = make_checkpoint("demo/rtmdet_tiny", tmp_path / "soft.pt", overrides=("model.test_cfg.nms.type=soft_nms",))
    r = det_inproc("export", ckpt, "--out", tmp_path / "f.onnx")
    assert r.returncode == 2 and "soft_nms cannot be exported" in r.stderr
    assert not (tmp_path / "f.onnx").exists()
    cv2.imwrite(str(tmp_path / "a.png"), shapes_image(0))
    r = det_inproc("infer", tmp_path / "a.png", "--weights", ckpt, "--backend", "onnxruntime")
    assert r.returncode == 2 and "not an exported model" in r.stderr
    r = det_inproc("export", tmp_path / "missing.pt")
    assert r.returncode == 2 and "not found" in r.stderr


def test_missing_extra_names_it():
    from det.core.deploy.extras import require
    from det.core.errors import DetError

    with pytest.raises(DetError, match=r"pip install 'det\[serve\]'"):
        require("fastapi.no_such_submodule_here", "det serve")
