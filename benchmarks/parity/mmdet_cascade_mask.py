"""Parity: `det convert mmdet-weights` on MMDetection's Cascade Mask R-CNN R-50-FPN.

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    DET_PEERS_ENV=/work/peers-env .venv/bin/python benchmarks/parity/mmdet_cascade_mask.py [--quick]
        [--json OUT] [--write-fixture]
MMDetection's model built from cascade-mask-rcnn_r50_fpn_1x_coco.py (random weights, norm statistics
and each stage's classifier randomised so that detections pass the score threshold without
saturating), saved as an
MMDetection checkpoint, converted with det, det's model built from
presets/cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.yaml exactly as shipped. Compared on one
image: the RPN's raw outputs, the final detections (boxes, scores, labels, masks averaged over the
three mask stages) and one batch of losses on the same ground truth: every RPN and stage term
(boxes and masks), with the random RoI sampling of both toolkits drawn from the same torch seed.
Bounds as in mmdet_realtime.py. `--write-fixture` stores a reduced-width model (ResNet-18 at 1/8
width) as tests/fixtures/cascade_mask_rcnn_parity.pt for CI.
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
from common import arg_parser, emit, median_ms  # noqa: E402
from mmdet_peer import start_parity  # noqa: E402
from mmdet_realtime import compare, convert, det_sample, ground_truth, mm_sample  # noqa: E402
from mmdet_weights import build_mmdet_model, flat, randomize  # noqa: E402

CONFIG = "cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py"
PRESET = "presets/cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.yaml"
LOSS_SEED = 7  # both toolkits' RandomSampler draw torch.randperm from the global generator
# the CI fixture: ResNet-18 at 1/8 width, 16-channel FPN and heads, 4 classes (well under 2 MB)
FIXTURE_OVERRIDES = ["model.backbone.depth=18", "model.backbone.base_channels=8",
                     "model.neck.in_channels=[8,16,32,64]", "model.neck.out_channels=16",
                     "model.rpn_head.in_channels=16", "model.rpn_head.feat_channels=16",
                     "model.roi_head.bbox_roi_extractor.out_channels=16",
                     *(f"model.roi_head.bbox_head.{i}.{k}" for i in range(3)
                       for k in ("in_channels=16", "fc_out_channels=32", "num_classes=4")),
                     "model.roi_head.mask_roi_extractor.out_channels=16", "model.roi_head.mask_head.in_channels=16",
                     "model.roi_head.mask_head.conv_out_channels=16", "model.roi_head.mask_head.num_classes=4",
                     "model.test_cfg.rcnn.max_per_img=20"]


def reduce_mm_cfg(cfg) -> None:
    """The MMDetection side of FIXTURE_OVERRIDES."""
    m = cfg.model
    m.backbone.update(depth=18, base_channels=8)
    m.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)
    m.rpn_head.update(in_channels=16, feat_channels=16)
    m.roi_head.bbox_roi_extractor.out_channels = 16
    for head in m.roi_head.bbox_head:
        head.update(in_channels=16, fc_out_channels=32, num_classes=4)
    m.roi_head.mask_roi_extractor.out_channels = 16
    m.roi_head.mask_head.update(in_channels=16, conv_out_channels=16, num_classes=4)
    m.test_cfg.rcnn.max_per_img = 20


def spread(model: torch.nn.Module, seed: int) -> None:
    """Each stage's classifier spread so that averaged softmax scores pass score_thr (0.05 of
    81 classes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in model.roi_head.bbox_head:
            head.fc_cls.weight.copy_(torch.randn(head.fc_cls.weight.shape, generator=g) * 0.005)
            head.fc_cls.bias.copy_(torch.randn(head.fc_cls.bias.shape, generator=g))


def mm_model(peer, reduced: bool = False):
    MODELS, Config, cfg_dir = peer
    cfg = Config.fromfile(os.path.join(cfg_dir, CONFIG))
    if reduced:
        reduce_mm_cfg(cfg)
    torch.manual_seed(0)  # init_weights draws from the global generator: the same model every run
    mm = build_mmdet_model(MODELS, cfg)
    randomize(mm, 0)
    spread(mm, 0)
    return mm


def _losses(raw: dict) -> dict[str, float]:
    """MMDetection's loss names (`s0.loss_cls`, per-level lists) as det's (`loss_cls_s0`, sums);
    accuracies dropped."""
    out = {}
    for key, value in raw.items():
        stage, _, name = key.rpartition(".")
        if name.startswith("loss"):
            out[f"{name}_s{stage[1:]}" if stage else name] = float(sum(value) if isinstance(value, list) else value)
    return out


def mm_outputs(mm, x: torch.Tensor, gt: dict) -> dict:
    """MMDetection's RPN outputs, detections (with masks) and losses on the normalised batch `x`."""
    h, w = x.shape[-2:]
    meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
            "scale_factor": (1.0, 1.0)}
    with torch.no_grad():
        pred = mm.predict(x, [mm_sample(meta)], rescale=True)[0].pred_instances
        out = {"raw": list(flat(mm.rpn_head(mm.extract_feat(x))).values()), "bboxes": pred.bboxes,
               "scores": pred.scores, "labels": pred.labels, "masks": pred.masks.bool()}
        torch.manual_seed(LOSS_SEED)
        out.update(_losses(mm.loss(x, [mm_sample(meta, gt, True)])))
    return out


def det_outputs(det, img: torch.Tensor, gt: dict) -> dict:
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
        pred = det.predict(img, [det_sample(h, w)])[0]
        out = {"raw": list(flat(det.rpn_head(det.extract_feat(x))).values()), "bboxes": pred.bboxes,
               "scores": pred.scores, "labels": pred.labels, "masks": pred.masks.bool()}
        torch.manual_seed(LOSS_SEED)
        out.update({k: float(v) for k, v in det.loss(img, [det_sample(h, w, gt, True)]).items()})
    return out


def run(peer, size: tuple[int, int], tmp: str, quick: bool) -> tuple[dict, list[str]]:
    mm = mm_model(peer)
    det, info = convert(mm.state_dict(), tmp, "cascade-mask-rcnn", REPO / PRESET)
    torch.manual_seed(1)
    h, w = size
    img = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8)
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
    mm_out, det_out = mm_outputs(mm, x, ground_truth(h, w, det.num_classes)), det_outputs(det, img, ground_truth(
        h, w, det.num_classes))
    row = {"case": "cascade-mask-rcnn-r50", "unmapped": len(info["unmapped"]), "missing": len(info["missing"])}
    row.update(compare(mm_out, det_out))
    far = [f"{k} {mm_out[k]:.6g} vs {det_out.get(k, float('nan')):.6g}" for k in sorted(mm_out)
           if k.startswith("loss") and not abs(mm_out[k] - det_out.get(k, float("nan"))) <= 1e-4]
    row["score_range"] = f"{float(det_out['scores'].min()):.3f}-{float(det_out['scores'].max()):.3f}"
    row.update({f"{k}": round(det_out[k], 6) for k in sorted(det_out) if k.startswith("loss")})
    repeat = 2 if quick else 5
    meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
            "scale_factor": (1.0, 1.0)}
    with torch.no_grad():
        row["det_ms"] = median_ms(lambda: det.predict(img, [det_sample(h, w)]), repeat=repeat)
        row["peer_ms"] = median_ms(lambda: mm.predict(x, [mm_sample(meta)]), repeat=repeat)
    row["peer"], row["ratio"] = "mmdet 3.3", row["peer_ms"] / row["det_ms"]
    notes = [f"{k} keys: {', '.join(info[k][:4])}" for k in ("unmapped", "missing") if info[k]]
    return row, notes + ([f"losses beyond 1e-4 (MMDetection vs det): {'; '.join(far)}"] if far else [])


def write_fixture(peer, tmp: str) -> dict:
    """The reduced model: MMDetection's state dict, the input, ground truth and its outputs."""
    mm = mm_model(peer, reduced=True)
    torch.manual_seed(1)
    img = torch.randint(0, 256, (1, 3, 96, 128), dtype=torch.uint8)
    gt = ground_truth(96, 128, 4)
    det, _ = convert(mm.state_dict(), tmp, "fixture", REPO / PRESET, FIXTURE_OVERRIDES)
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(96, 128)])
    ref, det_out = mm_outputs(mm, x, gt), det_outputs(det, img, gt)
    row = {"case": "fixture (reduced cascade-mask-rcnn)", **compare(ref, det_out)}
    out = REPO / "tests" / "fixtures" / "cascade_mask_rcnn_parity.pt"
    payload = {"state_dict": {k: v.contiguous() for k, v in mm.state_dict().items()}, "img": img, "gt": gt,
               "reference": ref, "overrides": FIXTURE_OVERRIDES, "preset": PRESET, "loss_seed": LOSS_SEED,
               "source": f"MMDetection 3.3 {CONFIG}, ResNet-18 at 1/8 width, random weights"}
    torch.save(payload, out)
    row["fixture_kb"] = out.stat().st_size // 1024
    row["score_range"] = f"{float(det_out['scores'].min()):.3f}-{float(det_out['scores'].max()):.3f}"
    return row


def main() -> int:
    parser = arg_parser("MMDetection Cascade Mask R-CNN converted to det: detection, mask and loss parity")
    parser.add_argument("--write-fixture", action="store_true",
                        help="also write tests/fixtures/cascade_mask_rcnn_parity.pt")
    args = parser.parse_args()
    peer = start_parity("mmdet cascade mask r-cnn parity", args.json)
    if peer is None:
        return 0
    size = (192, 256) if args.quick else (320, 416)
    notes = [f"input {size[0]}x{size[1]}, random weights, loss sampling seed {LOSS_SEED}"]
    with tempfile.TemporaryDirectory() as tmp:
        row, case_notes = run(peer, size, tmp, args.quick)
        rows = [row] + ([write_fixture(peer, tmp)] if args.write_fixture else [])
    emit("mmdet cascade mask r-cnn parity (det vs MMDetection, same converted weights)", rows, notes + case_notes,
         args.json)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
