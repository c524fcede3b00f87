"""Parity: MMDetection's ByteTrack checkpoint (YOLOX-X detector under `detector.`) through
`det convert mmdet-weights` onto det's preset
`bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval` as shipped.

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    DET_PEERS_ENV=/work/peers-env .venv/bin/python benchmarks/parity/mmdet_bytetrack.py [--quick] [--json OUT]
MMDetection's `ByteTrack` model is built from its config (random weights, norm statistics and the
detector's prediction layers randomised so detections exist), its whole state dict saved as an
MMDetection checkpoint and converted with `--strict` (every key must map: nothing unmapped, nothing
missing). On one image: raw head outputs, detections after each toolkit's post-processing (score
threshold 0.01, NMS 0.7) and one batch of losses. With random weights YOLOX-X's size logits
overflow `exp` in both toolkits (docs/realtime.md), so the box layer's weights are scaled by 1e-4
(its bias random): boxes stay finite; they are compared where both are finite all the same.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
from common import arg_parser, emit  # noqa: E402
from mmdet_peer import start_parity  # noqa: E402
from mmdet_realtime import det_outputs, det_sample, ground_truth, match, mm_outputs, spread  # noqa: E402
from mmdet_weights import randomize  # noqa: E402

NAME = "bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval"
CONFIG = f"bytetrack/{NAME}.py"
PRESET = REPO / "presets" / "bytetrack" / f"{NAME}.yaml"


def mm_bytetrack(peer):
    """MMDetection's ByteTrack model (detector without its COCO-pretrained download)."""
    MODELS, Config, cfg_dir = peer
    cfg = Config.fromfile(os.path.join(cfg_dir, CONFIG))
    cfg.model.detector.init_cfg = None
    model = MODELS.build(cfg.model)
    model.detector.init_weights()
    randomize(model.detector, 0)
    spread(model.detector, 0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # YOLOX-X's deep random features make exp(size logits) overflow otherwise
        for conv in model.detector.bbox_head.multi_level_conv_reg:
            conv.weight.mul_(1e-4)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.5)
        for conv in [*model.detector.bbox_head.multi_level_conv_cls, *model.detector.bbox_head.multi_level_conv_obj]:
            conv.bias.add_(2.0)  # one class: scores above the 0.01 threshold at some priors
    return model.eval()


def compare_finite(mm_out: dict, det_out: dict) -> dict:
    """Max abs differences; boxes only where both toolkits' boxes are finite."""
    row = {"raw_max_abs": max(float((a - b).abs().max()) for a, b in zip(mm_out["raw"], det_out["raw"]))}
    mi, di = match({**mm_out, "bboxes": mm_out["bboxes"].nan_to_num(posinf=1e9)},
                   {**det_out, "bboxes": det_out["bboxes"].nan_to_num(posinf=1e9)})
    a, b = mm_out["bboxes"][mi], det_out["bboxes"][di]
    finite = a.isfinite().all(1) & b.isfinite().all(1)
    row.update({"mm_dets": len(mi), "det_dets": len(det_out["scores"]), "finite_boxes": int(finite.sum()),
                "boxes_max_abs": float((a[finite] - b[finite]).abs().max()) if finite.any() else float("nan"),
                "scores_max_abs": float((mm_out["scores"][mi] - det_out["scores"][di]).abs().max()) if len(mi) else 0.0,
                "labels_equal": bool(torch.equal(mm_out["labels"][mi], det_out["labels"][di]))})
    keys = sorted(k for k in mm_out if k.startswith("loss"))
    row["loss_max_abs"] = max(abs(mm_out[k] - det_out.get(k, float("nan"))) for k in keys)
    return row


def main() -> int:
    args = arg_parser("MMDetection ByteTrack (YOLOX-X) checkpoint converted to det: keys, outputs, losses").parse_args()
    peer = start_parity("mmdet ByteTrack conversion parity", args.json)
    if peer is None:
        return 0
    from det.core.convert.weights import convert_mmdet_weights
    from det.core.fileio import load_checkpoint
    from det.core.models import build_detector

    mm = mm_bytetrack(peer)
    state = mm.state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "bytetrack.pth", Path(tmp) / "det.pt"
        torch.save({"meta": {"dataset_meta": {"classes": ("pedestrian",)}}, "state_dict": state}, src)
        info = convert_mmdet_weights(src, out, PRESET, strict=True)
        ckpt = load_checkpoint(out)
    det = build_detector(ckpt["preset"]["model"]).eval()
    det.load_state_dict(ckpt["state_dict"], strict=True)
    h, w = (192, 320) if args.quick else (384, 640)
    torch.manual_seed(1)
    img = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8)
    gt = ground_truth(h, w, 1)
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
    row = {"case": NAME, "mm_keys": len(state), "detector_keys": sum(k.startswith("detector.") for k in state),
           "converted": info["tensors"], "unmapped": len(info["unmapped"]), "missing": len(info["missing"])}
    row.update(compare_finite(mm_outputs(mm.detector, x, gt), det_outputs(det, img, gt)))
    row["ok"] = bool(row["unmapped"] == row["missing"] == 0 and row["raw_max_abs"] <= 1e-4
                     and row["mm_dets"] == row["det_dets"] > 0 and row["labels_equal"]
                     and row["scores_max_abs"] <= 1e-5 and row["loss_max_abs"] <= 1e-4
                     and not row["boxes_max_abs"] > 1e-3)
    notes = [f"input {h}x{w}, random weights; strict conversion (dropped: {', '.join(info['dropped']) or 'none'})"]
    emit("mmdet ByteTrack (YOLOX-X) conversion parity", [row], notes, args.json)
    return 0 if row["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
