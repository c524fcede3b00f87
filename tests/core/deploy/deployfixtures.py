"""Checkpoints with informative outputs in seconds: a bundled demo preset's model with random
weights, BatchNorm statistics measured on synthetic shapes (so features keep their scale) and
a sharpened classifier, so the post-processing sees many boxes with spread-out scores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def make_checkpoint(preset: str, path: Path, overrides: tuple[str, ...] = (), sharpen: float = 0.5,
                    roi_sharpen: float = 1.0, scales: dict[str, float] | None = None) -> Path:
    from det.core.config import load_preset
    from det.core.data.synthetic.shapes import render_image
    from det.core.fileio import atomic_torch_save
    from det.core.models import build_detector

    cfg = load_preset(preset, list(overrides))
    torch.manual_seed(0)
    model = build_detector(cfg["model"])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    images = torch.stack([torch.from_numpy(render_image(0, "train", i, 96)[0]).permute(2, 0, 1) for i in range(4)])
    with torch.no_grad():
        x, _ = model.train().data_preprocessor(images, None)
        # heads with BatchNorm (dense heads) calibrate too; DETR-family forwards need samples in training
        model(x) if hasattr(model, "bbox_head") and not hasattr(model, "forward_transformer") else model.extract_feat(x)
    sd = model.state_dict()
    for k, v in sd.items():
        if v.ndim == 4 and any(s in k for s in ("rtm_cls", "conv_cls", "retina_cls")):
            sd[k] = v * sharpen
        for part, factor in (scales or {}).items():  # e.g. tame YOLOX's exp() box sizes
            if part in k:
                sd[k] = sd[k] * factor
        if v.ndim == 2 and "fc_cls" in k:  # RoI box heads: spread the softmax over many classes
            sd[k] = v * roi_sharpen
    head = model.roi_head if hasattr(model, "roi_head") else model.bbox_head
    classes = cfg["data"].get("classes") or [f"class{i}" for i in range(head.num_classes)]
    return atomic_torch_save(path, {"state_dict": sd, "preset": cfg, "meta": {"classes": classes}})


def shapes_image(seed: int, size: int = 64):
    from det.core.data.synthetic.shapes import render_image

    return render_image(seed, "val", 0, size)[0]


def agree(a: dict, b: dict, thr: float) -> None:
    """Same detections (order among equal scores aside), each matched to the closest box of the
    same label; detections within 1e-3 of the threshold may fall on either side."""
    sa, sb = np.array(a["scores"]), np.array(b["scores"])
    ba, bb = np.array(a["bboxes"]).reshape(-1, 4), np.array(b["bboxes"]).reshape(-1, 4)
    la, lb = np.array(a["labels"]), np.array(b["labels"])
    firm_a, firm_b = sa > thr + 1e-3, sb > thr + 1e-3
    assert firm_a.sum() == firm_b.sum()
    used = np.zeros(len(sb), bool)
    for i in np.flatnonzero(firm_a):
        cand = np.flatnonzero(~used & (lb == la[i]))
        d = np.abs(bb[cand] - ba[i]).max(1)
        j = cand[int(d.argmin())]
        used[j] = True
        # records round boxes to 0.01 px: one rounding step on top of the 1e-2 tolerance
        assert d.min() <= 1e-2 + 0.0101 and abs(sb[j] - sa[i]) <= 1e-3 + 1e-5


def verified_graph(rep: dict, out: Path) -> tuple[set[str], dict]:
    """Assert that the export's own check agreed with PyTorch (>= 20 detections, boxes within
    1e-2, scores within 1e-3); -> (the ONNX graph's op types, the sidecar)."""
    import json

    import onnx

    v = rep["verify"]
    assert v["ok"] and v["compared"] >= 20, v["summary"]
    assert v["max_box_diff"] <= 1e-2 and v["max_score_diff"] <= 1e-3
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    return ops, json.loads(Path(f"{out}.det.json").read_text())


def assert_refusals(export, ckpt: Path, folder: Path, family: str) -> None:
    """`--no-nms` and opset 15 are refused for `family` with exit-2 errors, writing nothing."""
    import pytest

    from det.core.errors import DetError

    with pytest.raises(DetError, match=f"--no-nms: {family}"):
        export(ckpt, folder / "m.onnx", nms=False)
    with pytest.raises(DetError, match="opset >= 16"):
        export(ckpt, folder / "m.onnx", opset=15)
    assert list(folder.iterdir()) == []
