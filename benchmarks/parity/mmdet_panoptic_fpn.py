"""Parity: Panoptic FPN, MMDetection's panoptic-fpn_r50_fpn_1x_coco converted to det.

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    .venv/bin/python benchmarks/parity/mmdet_panoptic_fpn.py [--quick] [--json OUT] [--write-fixture]
MMDetection's model is built from its config with random weights (norm parameters and
statistics randomised; the RoI class layer and the semantic logits spread so that the config's own
score threshold 0.6 keeps detections and stuff regions differ), saved as an MMDetection checkpoint,
converted with `det convert mmdet-weights`, and det's model is built from the shipped preset
presets/panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.yaml (no overrides). Both get the same
normalised image. Compared: the semantic head's logits, the RPN's raw outputs, the Mask R-CNN
detections before fusion (boxes, scores, labels, masks), the fused panoptic map (MMDetection's
`label + instance_id * 1000` encoding, VOID = 133, against det's segments written the same way)
and the one-batch losses (RPN, RoI, mask, semantic) from the same random seed (both toolkits'
samplers draw with torch.randperm in the same order). Bound 1e-4 on every float; the panoptic maps
and the labels must be equal.

`--write-fixture` stores a reduced model (ResNet-18 base width 8, 16-channel FPN; the 80 + 53
classes kept) with its MMDetection checkpoint, input, ground truth and MMDetection's outputs as
tests/fixtures/panoptic_fpn_parity.pt, which tests/core/models/test_panoptic_fpn_parity.py checks
without the peer environment.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
from common import arg_parser, emit, median_ms  # noqa: E402
import mmdet_peer  # noqa: E402
from mmdet_peer import start_parity  # noqa: E402
from mmdet_weights import build_mmdet_model, detections_diff, flat  # noqa: E402

CFG = "panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py"
PRESET = "presets/panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.yaml"
BOUND = 1e-4
INSTANCE_OFFSET = 1000  # MMDetection's panoptic encoding
# the CI fixture's model: the same config narrowed (the same keys set on both sides)
NARROW = {"model.backbone.depth": 18, "model.backbone.base_channels": 8,
          "model.neck.in_channels": [8, 16, 32, 64], "model.neck.out_channels": 16,
          "model.rpn_head.in_channels": 16, "model.rpn_head.feat_channels": 16,
          "model.roi_head.bbox_roi_extractor.out_channels": 16, "model.roi_head.bbox_head.in_channels": 16,
          "model.roi_head.bbox_head.fc_out_channels": 32, "model.roi_head.mask_roi_extractor.out_channels": 16,
          "model.roi_head.mask_head.in_channels": 16, "model.roi_head.mask_head.conv_out_channels": 8,
          "model.semantic_head.in_channels": 16, "model.semantic_head.inner_channels": 8,
          "model.semantic_head.norm_cfg.num_groups": 4,
          "model.test_cfg.rcnn.max_per_img": 20}  # fewer stored masks


def roi_align(feats, rois, output_size, spatial_scale=1.0, sampling_ratio=0, pool_mode="avg", aligned=True):
    """mmcv.ops.roi_align's functional interface ('avg') on torchvision: MMDetection's mask
    targets (BitmapMasks.crop_and_resize) call it."""
    import torchvision

    if pool_mode != "avg":
        raise RuntimeError("only pool_mode='avg' is provided by the stand-in")
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    return torchvision.ops.roi_align(feats, rois, size, float(spatial_scale), int(sampling_ratio), bool(aligned))


mmdet_peer.PROVIDED.setdefault("roi_align", roi_align)


def det_overrides(narrow: dict) -> list[str]:
    return [f"{k}={list(v) if isinstance(v, (list, tuple)) else v}".replace(" ", "") for k, v in narrow.items()]


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random norm parameters/statistics; RoI class scores and semantic logits spread apart."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(0.05 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))
        fc_cls = model.roi_head.bbox_head.fc_cls
        fc_cls.weight.copy_(torch.randn(fc_cls.weight.shape, generator=g) * 0.3)  # scores over 0.6, few ties
        fc_cls.bias[-1] = -4.0  # background rarely wins
        logits = model.semantic_head.conv_logits
        logits.weight.copy_(torch.randn(logits.weight.shape, generator=g) * 2.0)


def ground_truth(h: int, w: int) -> dict:
    """Three things (boxes, labels, masks) on two stuff bands, a VOID line: the semantic map as
    LoadPanopticAnnotations makes it (thing labels 0-79, stuff 80-132, 255 ignore)."""
    boxes = torch.tensor([[20.0, 30.0, 120.0, 140.0], [150.0, 60.0, 250.0, 200.0], [60.0, 150.0, 200.0, 240.0]])
    boxes[:, 0::2].clamp_(0, w - 1)
    boxes[:, 1::2].clamp_(0, h - 1)
    labels = torch.tensor([0, 17, 56])
    masks = torch.zeros(3, h, w, dtype=torch.bool)
    sem = torch.full((h, w), 80 + 12, dtype=torch.uint8)
    sem[h // 2:] = 80 + 40
    sem[h // 2] = 255
    for i, b in enumerate(boxes.long()):
        masks[i, b[1]:b[3], b[0]:b[2]] = True
        masks[i, b[1]:b[1] + (b[3] - b[1]) // 3, b[0]:b[0] + (b[2] - b[0]) // 3] = False  # not a box
        sem[masks[i]] = labels[i].to(torch.uint8)
    return {"bboxes": boxes, "labels": labels, "masks": masks, "sem_seg": sem}


def mm_sample(meta: dict, gt: dict | None = None):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData, PixelData

    s = DetDataSample(metainfo=meta)
    if gt is not None:
        h, w = gt["masks"].shape[-2:]
        s.gt_instances = InstanceData(bboxes=gt["bboxes"].clone(), labels=gt["labels"].clone(),
                                      masks=BitmapMasks(gt["masks"].numpy().astype(np.uint8), h, w))
        s.gt_sem_seg = PixelData(sem_seg=gt["sem_seg"][None].long())
    return s


def det_sample(h: int, w: int, gt: dict | None = None):
    from det.core.structures import DetSample, Instances

    s = DetSample(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w))
    if gt is not None:
        s.gt = Instances(bboxes=gt["bboxes"].clone(), labels=gt["labels"].clone(), masks=gt["masks"].clone())
        s.gt_sem_seg = gt["sem_seg"].clone()
    return s


def det_panoptic_ids(pred, num_classes: int) -> torch.Tensor:
    """det's PanopticPrediction in MMDetection's encoding: things `label + k * 1000` (k the
    segment's rank among the things, in lay order), stuff `label`, VOID `num_classes`."""
    out = np.full(pred.seg_map.shape, num_classes, np.int64)
    k = 0
    for seg in pred.segments:
        region = pred.seg_map == int(seg["id"])
        if seg["isthing"]:
            k += 1
            out[region] = int(seg["label"]) + k * INSTANCE_OFFSET
        else:
            out[region] = int(seg["label"])
    return torch.as_tensor(out)


def mm_outputs(mm, x: torch.Tensor, gt: dict) -> dict:
    """MMDetection's semantic logits, RPN outputs, detections, panoptic map and losses."""
    h, w = x.shape[-2:]
    meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
            "scale_factor": (1.0, 1.0)}
    with torch.no_grad():
        feats = mm.extract_feat(x)
        sem = mm.semantic_head(feats)["seg_preds"]
        rpn = flat(mm.rpn_head(feats))
        proposals = mm.rpn_head.predict(feats, [mm_sample(meta)], rescale=False)
        inst = mm.roi_head.predict(feats, proposals, [mm_sample(meta)], rescale=True)[0]
        pan = mm.predict(x, [mm_sample(meta)], rescale=True)[0].pred_panoptic_seg.sem_seg[0].long()
    mm.train()
    torch.manual_seed(7)
    losses = mm.loss(x, [mm_sample(meta, gt)])
    mm.eval()
    out = {"sem_logits": sem, "rpn": rpn, "bboxes": inst.bboxes, "scores": inst.scores, "labels": inst.labels,
           "masks": inst.masks.bool(), "panoptic": pan}
    for key, value in losses.items():
        if "loss" in key:
            out[key] = float(sum(value) if isinstance(value, (list, tuple)) else value)
    return out


def det_outputs(det, img: torch.Tensor, gt: dict) -> dict:
    h, w = img.shape[-2:]
    with torch.no_grad():
        x, samples = det.data_preprocessor(img, [det_sample(h, w)])
        feats = det.extract_feat(x)
        sem = det.semantic_head(feats)
        rpn = flat(det.rpn_head(feats))
        pred = det.predict(img, [det_sample(h, w)])[0]
    det.train()
    torch.manual_seed(7)
    losses = det.loss(img, [det_sample(h, w, gt)])
    det.eval()
    inst = pred.instances
    out = {"x": x, "sem_logits": sem, "rpn": rpn, "bboxes": inst.bboxes, "scores": inst.scores,
           "labels": inst.labels, "masks": torch.as_tensor(inst.masks).bool(),
           "panoptic": det_panoptic_ids(pred, det.num_things_classes + det.num_stuff_classes)}
    out.update({k: float(v.detach()) for k, v in losses.items()})
    return out


def compare(ref: dict, got: dict) -> dict:
    """Max abs differences (floats), equality (labels, panoptic map) and the loss differences."""
    from types import SimpleNamespace

    row = {"sem_max_abs": float((ref["sem_logits"] - got["sem_logits"]).abs().max())}
    for key in ref["rpn"]:
        row[f"rpn_{key}_max_abs"] = float((ref["rpn"][key] - got["rpn"][key]).abs().max())
    mm_i = SimpleNamespace(**{k: ref[k] for k in ("bboxes", "scores", "labels")})
    det_i = SimpleNamespace(**{k: got[k] for k in ("bboxes", "scores", "labels")})
    row.update(detections_diff(_Inst(mm_i), _Inst(det_i)))
    same = len(ref["masks"]) == len(got["masks"])
    order_mm, order_det = torch.argsort(-ref["scores"], stable=True), torch.argsort(-got["scores"], stable=True)
    row["masks_agree"] = float((ref["masks"][order_mm] == got["masks"][order_det]).float().mean()) if same else 0.0
    row["panoptic_equal"] = bool(torch.equal(ref["panoptic"], got["panoptic"]))
    row["panoptic_agree"] = float((ref["panoptic"] == got["panoptic"]).float().mean())
    row["things"] = int((ref["panoptic"].unique() >= INSTANCE_OFFSET).sum())
    row["stuff"] = int(((ref["panoptic"].unique() >= 80) & (ref["panoptic"].unique() < 133)).sum())
    keys = sorted(k for k in ref if k.startswith("loss"))
    row["loss_keys_equal"] = keys == sorted(k for k in got if k.startswith("loss"))
    row["loss_max_abs"] = max(abs(ref[k] - got.get(k, float("inf"))) for k in keys)
    worst = max(keys, key=lambda k: abs(ref[k] - got.get(k, float("inf"))))
    row["loss_worst"] = f"{worst} {ref[worst]:.6g} vs {got.get(worst, float('nan')):.6g}"
    row["loss_seg_abs"] = abs(ref["loss_seg"] - got["loss_seg"])
    return row


class _Inst:
    """The `Instances` view detections_diff needs (len, boolean indexing) over plain tensors."""

    def __init__(self, ns) -> None:
        self.bboxes, self.scores, self.labels = ns.bboxes, ns.scores, ns.labels

    def __len__(self) -> int:
        return int(self.scores.numel())

    def __getitem__(self, keep):
        from types import SimpleNamespace

        return _Inst(SimpleNamespace(bboxes=self.bboxes[keep], scores=self.scores[keep], labels=self.labels[keep]))


def mm_model(peer, narrow: dict | None):
    MODELS, Config, cfg_dir = peer
    cfg = Config.fromfile(os.path.join(cfg_dir, CFG))
    if narrow:
        cfg.merge_from_dict(dict(narrow))
    torch.manual_seed(0)  # MMDetection's init_weights draws from the global generator
    mm = build_mmdet_model(MODELS, cfg)
    randomize(mm, 0)
    return mm


def convert(mm, tmp: str, narrow: dict | None):
    from det.core.convert.weights import convert_mmdet_weights
    from det.core.fileio import load_checkpoint
    from det.core.models import build_detector

    src = Path(tmp) / "mmdet.pth"
    torch.save({"meta": {"dataset_meta": {"classes": tuple(f"class{i}" for i in range(133))}},
                "state_dict": mm.state_dict()}, src)
    info = convert_mmdet_weights(src, Path(tmp) / "det.pt", REPO / PRESET, strict=True, force=True,
                                 overrides=det_overrides(narrow) if narrow else None)
    ckpt = load_checkpoint(Path(tmp) / "det.pt")
    det = build_detector(ckpt["preset"]["model"]).eval()
    det.load_state_dict(ckpt["state_dict"], strict=True)
    return det, info


def image(h: int, w: int) -> torch.Tensor:
    """A smooth random image (blobs rather than noise, so regions and boxes form)."""
    g = torch.Generator().manual_seed(1)
    low = torch.rand(1, 3, h // 16, w // 16, generator=g) * 255
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (img + torch.rand(1, 3, h, w, generator=g) * 20).clamp(0, 255).to(torch.uint8)


def run(peer, tmp: str, narrow: dict | None, size: tuple[int, int], name: str, timing: bool) -> tuple[dict, dict]:
    mm = mm_model(peer, narrow)
    det, info = convert(mm, tmp, narrow)
    h, w = size
    img, gt = image(h, w), ground_truth(h, w)
    got = det_outputs(det, img, gt)
    ref = mm_outputs(mm, got["x"], gt)
    row = {"case": name, "unmapped": len(info["unmapped"]), "missing": len(info["missing"]), **compare(ref, got)}
    floats = [v for k, v in row.items() if k.endswith("_max_abs")]
    row["within_1e-4"] = (max(floats) <= BOUND and row["labels_equal"] and row["panoptic_equal"]
                          and row["mm_dets"] == row["det_dets"] and row["loss_keys_equal"])
    if timing:
        from det.core.structures import DetSample  # noqa: F401

        meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
                "scale_factor": (1.0, 1.0)}
        with torch.no_grad():
            row["det_ms"] = median_ms(lambda: det.predict(img, [det_sample(h, w)]), repeat=3)
            row["peer_ms"] = median_ms(lambda: mm.predict(got["x"], [mm_sample(meta)]), repeat=3)
        row["peer"] = "mmdet 3.3"
    reference = dict(ref)  # masks bit-packed and the map as int32 to keep the CI fixture under 2 MB
    reference["masks"] = torch.as_tensor(np.packbits(ref["masks"].numpy(), axis=-1))
    reference["panoptic"] = ref["panoptic"].to(torch.int32)
    data = {"state_dict": mm.state_dict(), "overrides": det_overrides(narrow or {}), "preset": PRESET,
            "img": img, "gt": gt, "reference": reference}
    return row, data


def main() -> int:
    parser = arg_parser("Panoptic FPN: MMDetection checkpoint converted to det, output and loss parity")
    parser.add_argument("--write-fixture", action="store_true", help="also write tests/fixtures/panoptic_fpn_parity.pt")
    args = parser.parse_args()
    peer = start_parity("panoptic-fpn parity", args.json)
    if peer is None:
        return 0
    size = (256, 320) if args.quick else (320, 416)
    rows, notes = [], [f"input {size[0]}x{size[1]}, random weights; bound {BOUND}; losses from torch seed 7"]
    with tempfile.TemporaryDirectory() as tmp:
        row, _ = run(peer, tmp, None, size, "panoptic-fpn-r50 (shipped preset)", timing=True)
        rows.append(row)
        if args.write_fixture:
            row, data = run(peer, tmp, NARROW, (160, 192), "fixture (reduced: R-18 base 8, FPN 16)", timing=False)
            out = REPO / "tests" / "fixtures" / "panoptic_fpn_parity.pt"
            torch.save(data, out)
            row["fixture_kb"] = out.stat().st_size // 1024
            rows.append(row)
    emit("Panoptic FPN parity (det vs MMDetection, same converted weights)", rows, notes, args.json)
    return 0 if all(r["within_1e-4"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
