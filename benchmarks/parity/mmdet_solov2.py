"""Parity: `det convert mmdet-weights` on MMDetection's SOLOv2 (solov2_r50_fpn_1x_coco).

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    DET_PEERS_ENV=/work/peers-env .venv/bin/python benchmarks/parity/mmdet_solov2.py [--quick]
        [--json OUT] [--write-fixture]
MMDetection's model built from its config (random weights, norm parameters and the prediction
layers randomised so that masks pass the thresholds), saved as an MMDetection checkpoint,
converted with det, det's model built from det's preset exactly as shipped (no overrides).
Compared on one image: raw head outputs (kernels, class logits, mask features), final detections
(each toolkit's own post-processing, Matrix NMS included; masks at image size), and one batch of
losses (Dice and Focal) on the same ground truth. MMDetection's SOLOv2 returns zero boxes: its
masks' enclosing boxes (MMDetection's mask2bbox) are compared with det's derived boxes.
Bounds: boxes 1e-3 px, scores 1e-5, raw outputs and losses 1e-4, masks equal on >= 99.9% of
pixels. `--write-fixture` stores a reduced model (ResNet-18 at 1/16 width, 32-channel head) as
tests/fixtures/solov2_parity.pt for CI.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
from common import arg_parser, emit, median_ms  # noqa: E402
from mmdet_peer import start_parity  # noqa: E402
from mmdet_realtime import _flat_raw, compare, convert, det_sample, ground_truth, mm_sample  # noqa: E402
from mmdet_realtime import _mm_model as mm_model  # noqa: E402

CFG = "solov2/solov2_r50_fpn_1x_coco.py"
PRESET = "presets/solov2/solov2_r50_fpn_1x_coco.yaml"
# the fixture: ResNet-18 at 1/16 width, 32-channel FPN and head of 2 convs per branch, 4 classes,
# 20 detections (well under 2 MB)
FIXTURE_OVERRIDES = ["model.backbone.depth=18", "model.backbone.base_channels=4", "model.neck.in_channels=[4,8,16,32]",
                     "model.neck.out_channels=32", "model.mask_head.in_channels=32", "model.mask_head.feat_channels=32",
                     "model.mask_head.stacked_convs=2", "model.mask_head.num_classes=4",
                     "model.mask_head.mask_feature_head.feat_channels=32",
                     "model.mask_head.mask_feature_head.out_channels=32", "model.test_cfg.max_per_img=20"]


def reduce_mm_cfg(cfg) -> None:
    """The MMDetection side of FIXTURE_OVERRIDES."""
    cfg.model.backbone.update(depth=18, base_channels=4, init_cfg=None)
    cfg.model.neck.update(in_channels=[4, 8, 16, 32], out_channels=32)
    cfg.model.mask_head.update(in_channels=32, feat_channels=32, stacked_convs=2, num_classes=4)
    cfg.model.mask_head.mask_feature_head.update(feat_channels=32, out_channels=32)
    cfg.model.test_cfg.max_per_img = 20


def spread(model: torch.nn.Module, seed: int) -> None:
    """Class logits spread around the 0.1 threshold and kernels large enough that masks pass
    the area filter: random weights with MMDetection's prior keep every score under it."""
    g = torch.Generator().manual_seed(seed)
    head = model.mask_head
    with torch.no_grad():
        head.conv_cls.weight.copy_(torch.randn(head.conv_cls.weight.shape, generator=g) * 0.3)
        head.conv_cls.bias.copy_(torch.randn(head.conv_cls.bias.shape, generator=g) - 2.0)
        head.conv_kernel.weight.copy_(torch.randn(head.conv_kernel.weight.shape, generator=g) * 0.05)
        head.conv_kernel.bias.copy_(torch.randn(head.conv_kernel.bias.shape, generator=g) * 0.5)


def _pred(pred, boxes_from_masks) -> dict:
    """Detections as a dict; boxes are `boxes_from_masks(masks)` when given, else the prediction's own."""
    masks = pred.masks.bool()
    boxes = pred.bboxes if boxes_from_masks is None else boxes_from_masks(masks)
    return {"bboxes": boxes, "scores": pred.scores, "labels": pred.labels, "masks": masks}


def mm_outputs(mm, x: torch.Tensor, gt: dict) -> dict:
    from mmdet.structures.mask import mask2bbox

    h, w = x.shape[-2:]
    meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
            "scale_factor": (1.0, 1.0)}
    with torch.no_grad():
        out = {"raw": _flat_raw(mm.mask_head(mm.extract_feat(x))),
               **_pred(mm.predict(x, [mm_sample(meta)], rescale=True)[0].pred_instances, mask2bbox)}
        losses = mm.mask_head.loss(mm.extract_feat(x), [mm_sample(meta, gt, True)])
    return {**out, **{k: float(v) for k, v in losses.items()}}


def det_outputs(det, img: torch.Tensor, gt: dict) -> dict:
    """det's raw outputs, detections (its own boxes, derived from its masks) and losses."""
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
        out = {"raw": _flat_raw(det(x)), **_pred(det.predict(img, [det_sample(h, w)])[0], None)}
        losses = det.mask_head.loss(det.extract_feat(x), [det_sample(h, w, gt, True)])
    return {**out, **{k: float(v) for k, v in losses.items()}}


def _mm_model(peer, reduced: bool = False):
    return mm_model(peer, CFG, reduced, reduce_mm_cfg, spread).eval()


def match_with_masks(mm_out: dict, det_out: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair each MMDetection detection with det's of the same class, closest in mask, score and
    box: random-weight masks often cover the whole image, so boxes alone tie."""
    a, b = mm_out["masks"].flatten(1).float(), det_out["masks"].flatten(1).float()
    if len(a) == 0 or len(b) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    differ = (a[:, None] - b[None]).abs().mean(-1)
    cost = differ + 1e6 * (mm_out["labels"][:, None] != det_out["labels"][None])
    cost = cost + 1e3 * (mm_out["scores"][:, None] - det_out["scores"][None]).abs()
    cost = cost + (mm_out["bboxes"][:, None] - det_out["bboxes"][None]).abs().amax(-1)
    return torch.arange(len(a)), cost.argmin(1)


def _row(name: str, mm, det, img: torch.Tensor, gt: dict) -> tuple[dict, dict]:
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
    ref, got = mm_outputs(mm, x, gt), det_outputs(det, img, gt)
    row = {"case": name, **compare(ref, got, match_with_masks), "loss_mask": got["loss_mask"], "loss_cls": got["loss_cls"]}
    return row, ref


def run_case(peer, size, tmp, quick) -> tuple[dict, list[str]]:
    mm = _mm_model(peer)
    det, info = convert(mm.state_dict(), tmp, "solov2", REPO / PRESET)
    torch.manual_seed(1)
    img = torch.randint(0, 256, (1, 3, *size), dtype=torch.uint8)
    row, _ = _row("solov2-r50", mm, det, img, ground_truth(*size, det.num_classes))
    row.update({"unmapped": len(info["unmapped"]), "missing": len(info["missing"])})
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(*size)])
        repeat = 2 if quick else 5
        row["det_ms"] = median_ms(lambda: det(x), repeat=repeat)
        row["peer_ms"] = median_ms(lambda: mm.mask_head(mm.extract_feat(x)), repeat=repeat)
    row["peer"], row["ratio"] = "mmdet 3.3", row["peer_ms"] / row["det_ms"]
    return row, [f"solov2: {k} keys: {', '.join(info[k][:4])}" for k in ("unmapped", "missing") if info[k]]


def write_fixture(peer, tmp: str) -> dict:
    """The reduced model: MMDetection's state dict, the input, ground truth and its outputs."""
    mm = _mm_model(peer, reduced=True)
    det, _ = convert(mm.state_dict(), tmp, "solov2_fixture", REPO / PRESET, FIXTURE_OVERRIDES)
    torch.manual_seed(1)
    img = torch.randint(0, 256, (1, 3, 96, 128), dtype=torch.uint8)
    gt = ground_truth(96, 128, 4)
    row, ref = _row("fixture solov2 (reduced)", mm, det, img, gt)
    out = REPO / "tests" / "fixtures" / "solov2_parity.pt"
    payload = {"state_dict": {k: v.contiguous() for k, v in mm.state_dict().items()}, "img": img, "gt": gt,
               "reference": ref, "overrides": FIXTURE_OVERRIDES, "preset": PRESET,
               "source": f"MMDetection 3.3 {CFG}, ResNet-18 at 1/16 width, 32-channel head, random weights"}
    torch.save(payload, out)
    row["fixture_kb"] = out.stat().st_size // 1024
    return row


def main() -> int:
    parser = arg_parser("MMDetection SOLOv2 checkpoint converted to det: output and loss parity")
    parser.add_argument("--write-fixture", action="store_true", help="also write tests/fixtures/solov2_parity.pt")
    args = parser.parse_args()
    peer = start_parity("mmdet SOLOv2 parity", args.json)
    if peer is None:
        return 0
    size = (192, 256) if args.quick else (320, 416)
    notes = [f"input {size[0]}x{size[1]}, random weights; bounds as mmdet_realtime.py; MMDetection's boxes are "
             "its masks' mask2bbox (it returns zeros)"]
    with tempfile.TemporaryDirectory() as tmp:
        row, case_notes = run_case(peer, size, tmp, args.quick)
        rows = [row]
        if args.write_fixture:
            rows.append(write_fixture(peer, tmp))
    emit("mmdet SOLOv2 parity (det vs MMDetection, same converted weights)", rows, notes + case_notes, args.json)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
