"""Parity: `det convert mmdet-weights` on MMDetection's own RTMDet-tiny, RetinaNet and FCOS.

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    .venv/bin/python benchmarks/parity/mmdet_weights.py [--quick] [--json OUT]
For each model: build it from MMDetection's config with random weights (norm statistics
randomised too, class layers spread so that the configs' own score thresholds keep detections), save an MMDetection-style checkpoint, convert it with det, build det's model
from the preset stored in the converted checkpoint (det's shipped preset, no overrides: parity
checks run det's presets exactly as users get them), and feed both the same normalised batch
(each toolkit's own normalisation of the uint8 image is compared too: `input_max_abs`).
Compared: the raw head outputs (class logits, box regressions, centerness), then the final
detections of both toolkits' own post-processing (MMDetection's predict with a torchvision NMS
standing in for mmcv.ops; det's predict). Max abs differences are reported; the acceptance bound
is 1e-4. Timing rows: the raw forward of each model (Faster R-CNN: predict), det beside
MMDetection. Faster R-CNN's RoIAlign runs on torchvision's kernel on the MMDetection side
(mmcv.ops is not built), det uses det.ops.roi_align.
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

# det's presets run exactly as users get them (no overrides): each case names the shipped preset
# whose model is MMDetection's config's model.
CASES = [
    # name, MMDetection config, det preset
    ("rtmdet-tiny", "rtmdet/rtmdet_tiny_8xb32-300e_coco.py", "presets/rtmdet_tiny.yaml"),
    ("retinanet-r50", "retinanet/retinanet_r50_fpn_1x_coco.py", "presets/retinanet_r50_fpn.yaml"),
    ("fcos-r50-caffe", "fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py", "presets/zoo/fcos_r50-caffe_fpn_gn-head.yaml"),
    ("faster-rcnn-r50", "faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py", "presets/faster_rcnn.yaml"),
    ("mask-rcnn-swin-t", "swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py", "presets/zoo/mask-rcnn_swin-t-p4-w7_fpn.yaml"),
]
BOUND = 1e-4


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random conv/linear weights at a moderate scale and random norm parameters/statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            # mild: deep nets amplify; saturated sigmoids would make many scores tie exactly,
            # and tie order is implementation-defined (topk vs sort), not a conversion property
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(0.05 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))
            elif type(m).__name__ == "Scale":
                m.scale.copy_(0.8 + 0.4 * torch.rand((), generator=g))
        # MMDetection's class prior (0.01) keeps every random-weight score under the configs' own
        # thresholds (0.05): spread the class layers instead, so the shipped thresholds keep some
        heads = [getattr(getattr(model, "bbox_head", None), n, None) for n in ("retina_cls", "conv_cls")]
        for layer in [h for h in heads if h is not None]:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) - 1.0)
        fc_cls = getattr(getattr(getattr(model, "roi_head", None), "bbox_head", None), "fc_cls", None)
        if fc_cls is not None:
            fc_cls.weight.copy_(torch.randn(fc_cls.weight.shape, generator=g) * 0.3)
        # RTMDet regresses distances linearly (no exp/ReLU): positive biases give proper boxes
        # instead of the degenerate ones a zero-mean init decodes to (which the two toolkits
        # treat differently: see det_degenerate)
        for reg in getattr(getattr(model, "bbox_head", None), "rtm_reg", []):
            reg.bias.copy_(0.5 + torch.rand(reg.bias.shape, generator=g))
        # its tiny-initialised class convs on small random-init features give logits that tie in
        # float32; spread them so that the kept set does not depend on tie order
        for cls in getattr(getattr(model, "bbox_head", None), "rtm_cls", []):
            cls.weight.copy_(torch.randn(cls.weight.shape, generator=g) * 3.0)
            cls.bias.copy_(torch.randn(cls.bias.shape, generator=g) - 3.0)


def build_mmdet_model(MODELS, cfg):
    """MMDetection's model with its own initialisation (head priors included), minus the
    pretrained-backbone download."""
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def flat(outputs) -> dict[str, torch.Tensor]:
    """Head outputs as {'cls': ..., 'bbox': ..., ...} concatenated over levels."""
    names = ["cls", "bbox", "centerness"]
    return {names[i]: torch.cat([t.flatten() for t in group]) for i, group in enumerate(outputs)}


def _order(inst) -> torch.Tensor:
    """Score descending; equal scores by label, then box corners (tie order is arbitrary)."""
    import numpy as np

    boxes = inst.bboxes.detach().cpu().numpy()
    keys = [boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], inst.labels.cpu().numpy(), -inst.scores.cpu().numpy()]
    return torch.as_tensor(np.lexsort(keys))


def detections_diff(mm_inst, det_inst) -> dict:
    """Sort both the same way and compare rank by rank. Detections tied with the lowest kept score
    are left out of the comparison: which of equal scores survive the max_per_img cut is
    implementation-defined (random weights tie often); `boundary_ties` counts them."""
    floor = max(float(mm_inst.scores.min()), float(det_inst.scores.min())) if len(mm_inst) and len(det_inst) else 0.0
    mm_keep = mm_inst[mm_inst.scores > floor] if len(mm_inst) else mm_inst
    det_keep = det_inst[det_inst.scores > floor] if len(det_inst) else det_inst
    mo, do = _order(mm_keep), _order(det_keep)
    n = min(len(mo), len(do))
    labels_equal = len(mo) == len(do) and bool(torch.equal(mm_keep.labels[mo].cpu(), det_keep.labels[do].cpu()))
    return {
        "mm_dets": int(len(mm_inst)), "det_dets": int(len(det_inst)), "boundary_ties": int(len(mm_inst) - len(mo)),
        "labels_equal": labels_equal,
        "boxes_max_abs": float((mm_keep.bboxes[mo][:n] - det_keep.bboxes[do][:n]).abs().max()) if n else 0.0,
        "scores_max_abs": float((mm_keep.scores[mo][:n] - det_keep.scores[do][:n]).abs().max()) if n else 0.0,
    }


def preprocess_diff(mm, det, img: torch.Tensor, sample) -> float:
    """Max abs difference of the two toolkits' own normalisation of the same uint8 image."""
    from mmdet.structures import DetDataSample

    mm_x = mm.data_preprocessor({"inputs": [img[0]], "data_samples": [DetDataSample()]}, False)["inputs"]
    det_x, _ = det.data_preprocessor(img, [sample])
    if mm_x.shape != det_x.shape:
        return float("inf")
    return float((mm_x - det_x).abs().max())


def run_case(name, cfg_rel, preset, MODELS, Config, cfg_dir, size, tmp, quick) -> tuple[dict, list[str]]:
    from mmdet.structures import DetDataSample

    from det.core.convert.weights import convert_mmdet_weights
    from det.core.fileio import load_checkpoint
    from det.core.models import build_detector
    from det.core.structures import DetSample

    notes = []
    cfg = Config.fromfile(os.path.join(cfg_dir, cfg_rel))
    mm = build_mmdet_model(MODELS, cfg)
    randomize(mm, 0)
    src = Path(tmp) / f"{name}.pth"
    torch.save({"meta": {"dataset_meta": {"classes": tuple(f"class{i}" for i in range(80))}},
                "state_dict": mm.state_dict()}, src)
    info = convert_mmdet_weights(src, Path(tmp) / f"{name}_det.pt", REPO / preset, force=True)
    ckpt = load_checkpoint(Path(tmp) / f"{name}_det.pt")
    det = build_detector(ckpt["preset"]["model"]).eval()
    det.load_state_dict(ckpt["state_dict"], strict=False)

    torch.manual_seed(1)
    h, w = size
    img = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8)
    sample = DetSample(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w))
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [sample])
        if hasattr(mm, "rpn_head"):  # two-stage: the RPN's raw outputs (RoI outputs depend on proposals)
            mm_raw = flat(mm.rpn_head(mm.extract_feat(x)))
            det_raw = flat(det.rpn_head(det.extract_feat(x)))
        else:
            mm_raw, det_raw = flat(mm._forward(x)), flat(det(x))
        row = {"case": name, "unmapped": len(info["unmapped"]), "missing": len(info["missing"]),
               "input_max_abs": preprocess_diff(mm, det, img, sample)}
        for key in mm_raw:
            row[f"{key}_max_abs"] = float((mm_raw[key] - det_raw[key]).abs().max())
        meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": tuple(x.shape[2:]),
                "batch_input_shape": tuple(x.shape[2:]), "scale_factor": (1.0, 1.0)}
        mm_pred = mm.predict(x, [DetDataSample(metainfo=meta)], rescale=True)[0].pred_instances
        det_pred = det.predict(img, [sample], rescale=True)[0]
        row.update(detections_diff(mm_pred, det_pred))
        wh = det_pred.bboxes[:, 2:] - det_pred.bboxes[:, :2]
        # MMDetection drops boxes with w or h <= min_bbox_size even when it is 0; count det's
        row["det_degenerate"] = int(((wh[:, 0] <= 0) | (wh[:, 1] <= 0)).sum())
        repeat = 2 if quick else 5
        if hasattr(mm, "rpn_head"):  # two-stage raw forward needs proposals: time predict instead
            row["det_ms"] = median_ms(lambda: det.predict(img, [sample]), repeat=repeat)
            row["peer_ms"] = median_ms(lambda: mm.predict(x, [DetDataSample(metainfo=meta)]), repeat=repeat)
        else:
            row["det_ms"] = median_ms(lambda: det(x), repeat=repeat)
            row["peer_ms"] = median_ms(lambda: mm._forward(x), repeat=repeat)
        row["peer"] = "mmdet 3.3"
        row["ratio"] = row["peer_ms"] / row["det_ms"]
    worst = max(v for k, v in row.items() if k.endswith("_max_abs"))
    row["within_1e-4"] = worst <= BOUND and row["mm_dets"] == row["det_dets"] and row["labels_equal"]
    if info["missing"]:
        notes.append(f"{name}: det keys not in MMDetection's checkpoint: {', '.join(info['missing'][:5])}")
    if info["unmapped"]:
        notes.append(f"{name}: MMDetection keys det does not use: {', '.join(info['unmapped'][:5])}")
    return row, notes


def main() -> int:
    parser = arg_parser("MMDetection checkpoints converted to det: output parity")
    parser.add_argument("--cases", nargs="*", default=[c[0] for c in CASES])
    args = parser.parse_args()
    peer = start_parity("mmdet-weights parity", args.json)
    if peer is None:
        return 0
    MODELS, Config, cfg_dir = peer
    size = (192, 256) if args.quick else (320, 416)
    rows, notes = [], [f"input {size[0]}x{size[1]}, random weights; bound {BOUND}"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg_rel, preset in CASES:
            if name not in args.cases:
                continue
            row, case_notes = run_case(name, cfg_rel, preset, MODELS, Config, cfg_dir, size, tmp, args.quick)
            rows.append(row)
            notes += case_notes
    emit("mmdet-weights parity (det vs MMDetection, same converted weights)", rows, notes, args.json)
    return 0 if all(r["within_1e-4"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
