"""Parity: `det convert mmdet-weights` on MMDetection's real-time families (YOLOX nano..x,
RTMDet-Ins tiny..x).

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    DET_PEERS_ENV=/work/peers-env .venv/bin/python benchmarks/parity/mmdet_realtime.py [--quick]
        [--cases yolox-tiny ...] [--json OUT] [--write-fixture]
For each model: MMDetection's model built from its config (random weights, norm statistics and
prediction layers randomised so that detections exist), saved as an MMDetection checkpoint,
converted with det, det's model built from det's preset exactly as shipped (no overrides).
Compared on one image: raw head outputs, final detections (each toolkit's own post-processing;
MMDetection's NMS on torchvision; RTMDet-Ins masks too), and one batch of losses on the same
ground truth (YOLOX without and with the L1 loss of its last epochs; RTMDet-Ins with masks).
Bounds: boxes 1e-3 px, scores 1e-5, raw outputs and losses 1e-4, masks equal on >= 99.9% of
pixels. `--write-fixture` stores reduced-width models (MMDetection's checkpoint, input, ground
truth and MMDetection's outputs) as tests/fixtures/{yolox,rtmdet_ins}_parity.pt for CI.
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
from mmdet_weights import build_mmdet_model, randomize  # noqa: E402

CASES = [(f"yolox-{s}", f"yolox/yolox_{s}_8xb8-300e_coco.py", f"presets/yolox/yolox_{s}_8xb8-300e_coco.yaml")
         for s in ("nano", "tiny", "s", "m", "l", "x")] + \
        [(f"rtmdet-ins-{s}", f"rtmdet/rtmdet-ins_{s}_8xb{b}-300e_coco.py",
          f"presets/rtmdet/rtmdet-ins_{s}_8xb{b}-300e_coco.yaml")
         for s, b in (("tiny", 32), ("s", 32), ("m", 32), ("l", 32), ("x", 16))]
BOUNDS = {"boxes": 1e-3, "scores": 1e-5, "raw": 1e-4, "loss": 1e-4, "mask_agree": 0.999}
# CI fixtures: the tiny models narrowed (and RTMDet-Ins's detections capped) so that each file
# stays well under 2 MB.
_NARROW = ["model.backbone.widen_factor=0.0625", "model.neck.in_channels=[16,32,64]", "model.neck.out_channels=16",
           "model.bbox_head.in_channels=16", "model.bbox_head.feat_channels=16", "model.bbox_head.num_classes=4"]
FIXTURES = {"yolox": ("yolox-tiny", _NARROW),
            "rtmdet_ins": ("rtmdet-ins-tiny", [*_NARROW, "model.test_cfg.max_per_img=20"])}


def family(name: str) -> str:
    return "yolox" if name.startswith("yolox") else "rtmdet_ins"


def reduce_mm_cfg(cfg) -> None:
    """The MMDetection side of the fixtures' overrides."""
    cfg.model.backbone.widen_factor = 0.0625
    cfg.model.neck.in_channels, cfg.model.neck.out_channels = [16, 32, 64], 16
    cfg.model.bbox_head.update(in_channels=16, feat_channels=16, num_classes=4)
    if "max_per_img" in cfg.model.test_cfg:
        cfg.model.test_cfg.max_per_img = 20


def spread(model: torch.nn.Module, seed: int) -> None:
    """Prediction layers that give scores above the thresholds and proper boxes: MMDetection's
    priors keep every score under the thresholds on random weights."""
    g = torch.Generator().manual_seed(seed)
    head = model.bbox_head
    with torch.no_grad():
        if hasattr(head, "multi_level_conv_obj"):  # YOLOX
            for conv in [*head.multi_level_conv_cls, *head.multi_level_conv_obj]:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.5)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) - 3.0)
            for conv in head.multi_level_conv_reg:
                conv.weight.mul_(0.3)
            return
        for conv in head.rtm_cls:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 3.0)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) - 3.0)
        for conv in head.rtm_reg:  # ReLU distances: positive, a few strides
            conv.bias.copy_(1.0 + torch.rand(conv.bias.shape, generator=g))
        for conv in head.rtm_kernel:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.3)


def ground_truth(h: int, w: int, num_classes: int) -> dict:
    boxes = torch.tensor([[0.1, 0.15, 0.45, 0.6], [0.5, 0.2, 0.9, 0.55], [0.3, 0.55, 0.7, 0.95],
                          [0.05, 0.05, 0.2, 0.25]]) * torch.tensor([w, h, w, h])
    masks = torch.zeros((4, h, w), dtype=torch.bool)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):  # ellipses inscribed in the boxes
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        masks[i] = ((xs + 0.5 - cx) / rx) ** 2 + ((ys + 0.5 - cy) / ry) ** 2 <= 1
    return {"bboxes": boxes, "labels": torch.tensor([0, 1, 2, 3]) % num_classes, "masks": masks}


def mm_sample(meta: dict, gt: dict | None = None, with_masks: bool = False):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    s = DetDataSample(metainfo=meta)
    if gt is not None:
        inst = InstanceData(bboxes=gt["bboxes"].clone(), labels=gt["labels"].clone())
        if with_masks:
            inst.masks = BitmapMasks(gt["masks"].numpy().astype("uint8"), *gt["masks"].shape[-2:])
        s.gt_instances = inst
    return s


def det_sample(h: int, w: int, gt: dict | None = None, with_masks: bool = False):
    from det.core.structures import DetSample, Instances

    s = DetSample(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w))
    if gt is not None:
        s.gt = Instances(bboxes=gt["bboxes"].clone(), labels=gt["labels"].clone(),
                         masks=gt["masks"].clone() if with_masks else None)
    return s


def _flat_raw(raw) -> list[torch.Tensor]:
    return [torch.cat([t.flatten() for t in g]) if isinstance(g, (list, tuple)) else g.flatten() for g in raw]


def _pred(pred) -> dict:
    out = {"bboxes": pred.bboxes, "scores": pred.scores, "labels": pred.labels}
    if getattr(pred, "masks", None) is not None:
        out["masks"] = pred.masks.bool()
    return out


def mm_outputs(mm, x: torch.Tensor, gt: dict) -> dict:
    """MMDetection's raw outputs, detections and losses on the normalised batch `x`."""
    h, w = x.shape[-2:]
    ins = not hasattr(mm.bbox_head, "use_l1")
    meta = {"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
            "scale_factor": (1.0, 1.0)}
    with torch.no_grad():
        out = {"raw": _flat_raw(mm._forward(x)), **_pred(mm.predict(x, [mm_sample(meta)], rescale=True)[0].pred_instances)}
        feats = mm.extract_feat(x)
        for l1 in ((None,) if ins else (False, True)):
            if l1 is not None:
                mm.bbox_head.use_l1 = l1
            losses = mm.bbox_head.loss(feats, [mm_sample(meta, gt, ins)])
            out.update({f"{k}{'_l1' if l1 else ''}": float(sum(v) if isinstance(v, list) else v)
                        for k, v in losses.items()})
        if not ins:
            mm.bbox_head.use_l1 = False
    return out


def det_outputs(det, img: torch.Tensor, gt: dict) -> dict:
    h, w = img.shape[-2:]
    ins = not hasattr(det.bbox_head, "use_l1")
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
        out = {"raw": _flat_raw(det(x)), **_pred(det.predict(img, [det_sample(h, w)])[0])}
        feats = det.extract_feat(x)
        for l1 in ((None,) if ins else (False, True)):
            if l1 is not None:
                det.bbox_head.use_l1 = l1
            losses = det.bbox_head.loss(feats, [det_sample(h, w, gt, ins)])
            out.update({f"{k}{'_l1' if l1 else ''}": float(v) for k, v in losses.items()})
        if not ins:
            det.bbox_head.use_l1 = False
    return out


def match(mm_out: dict, det_out: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair each MMDetection detection with det's closest one of the same class (L-inf box
    distance): on random weights many scores tie to 1e-8, so rank order is not comparable.
    -> (mm indices, det indices)."""
    a, b = mm_out["bboxes"].float(), det_out["bboxes"].float()
    if len(a) == 0 or len(b) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    cost = (a[:, None] - b[None]).abs().amax(-1)
    cost = cost + 1e6 * (mm_out["labels"][:, None] != det_out["labels"][None])
    cost = cost + 1e3 * (mm_out["scores"][:, None] - det_out["scores"][None]).abs()
    return torch.arange(len(a)), cost.argmin(1)


def compare(mm_out: dict, det_out: dict, matcher=None) -> dict:
    """Max abs differences (raw outputs, detections, each loss), mask agreement, the verdict;
    detections paired by `matcher` (default `match`)."""
    row = {"raw_max_abs": max(float((a - b).abs().max()) for a, b in zip(mm_out["raw"], det_out["raw"]))}
    mi, di = (matcher or match)(mm_out, det_out)
    row.update({"mm_dets": len(mm_out["scores"]), "det_dets": len(det_out["scores"]),
                "one_to_one": bool(len(di.unique()) == len(di) == len(det_out["scores"])),
                "labels_equal": bool(torch.equal(mm_out["labels"][mi], det_out["labels"][di]))})
    row["boxes_max_abs"] = float((mm_out["bboxes"][mi] - det_out["bboxes"][di]).abs().max()) if len(mi) else 0.0
    row["scores_max_abs"] = float((mm_out["scores"][mi] - det_out["scores"][di]).abs().max()) if len(mi) else 0.0
    loss_keys = sorted(k for k in mm_out if k.startswith("loss"))
    row["loss_keys_equal"] = loss_keys == sorted(k for k in det_out if k.startswith("loss"))
    row["loss_max_abs"] = max(abs(mm_out[k] - det_out.get(k, float("nan"))) for k in loss_keys)
    ok_masks = True
    if "masks" in mm_out:
        a, b = mm_out["masks"][mi], det_out["masks"][di]
        ok_masks = a.shape == b.shape
        row["mask_agree"] = float((a == b).float().mean()) if ok_masks and len(mi) else 0.0
        ok_masks = ok_masks and row["mask_agree"] >= BOUNDS["mask_agree"]
    row["ok"] = bool(row["raw_max_abs"] <= BOUNDS["raw"] and row["mm_dets"] == row["det_dets"] > 0
                     and row["one_to_one"] and row["labels_equal"] and row["boxes_max_abs"] <= BOUNDS["boxes"]
                     and row["scores_max_abs"] <= BOUNDS["scores"] and row["loss_keys_equal"]
                     and row["loss_max_abs"] <= BOUNDS["loss"] and ok_masks)
    return row


def convert(state: dict, tmp: str, name: str, preset: Path, overrides: list[str] | None = None):
    """MMDetection state dict -> det model through `convert_mmdet_weights` (a real file round trip)."""
    from det.core.convert.weights import convert_mmdet_weights
    from det.core.fileio import load_checkpoint
    from det.core.models import build_detector

    src = Path(tmp) / f"{name}.pth"
    torch.save({"meta": {"dataset_meta": {"classes": tuple(f"class{i}" for i in range(80))}}, "state_dict": state}, src)
    info = convert_mmdet_weights(src, Path(tmp) / f"{name}_det.pt", preset, overrides=overrides, force=True)
    ckpt = load_checkpoint(Path(tmp) / f"{name}_det.pt")
    det = build_detector(ckpt["preset"]["model"]).eval()
    det.load_state_dict(ckpt["state_dict"], strict=True)
    return det, info


def _mm_model(peer, cfg_rel: str, reduced: bool = False, reduce=None, spread_fn=None):
    """MMDetection's model from its config (reduced by `reduce`), randomised, then `spread_fn`
    (defaults: this script's `reduce_mm_cfg` and `spread`)."""
    MODELS, Config, cfg_dir = peer
    cfg = Config.fromfile(os.path.join(cfg_dir, cfg_rel))
    if reduced:
        (reduce or reduce_mm_cfg)(cfg)
    mm = build_mmdet_model(MODELS, cfg)
    randomize(mm, 0)
    (spread_fn or spread)(mm, 0)
    return mm


def run_case(name, cfg_rel, preset, peer, size, tmp, quick) -> tuple[dict, list[str]]:
    mm = _mm_model(peer, cfg_rel)
    det, info = convert(mm.state_dict(), tmp, name, REPO / preset)
    torch.manual_seed(1)
    h, w = size
    img = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8)
    gt = ground_truth(h, w, det.num_classes)
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(h, w)])
    row = {"case": name, "unmapped": len(info["unmapped"]), "missing": len(info["missing"])}
    row.update(compare(mm_outputs(mm, x, gt), det_outputs(det, img, gt)))
    repeat = 2 if quick else 5
    with torch.no_grad():
        row["det_ms"] = median_ms(lambda: det(x), repeat=repeat)
        row["peer_ms"] = median_ms(lambda: mm._forward(x), repeat=repeat)
    row["peer"], row["ratio"] = "mmdet 3.3", row["peer_ms"] / row["det_ms"]
    return row, [f"{name}: {k} keys: {', '.join(info[k][:4])}" for k in ("unmapped", "missing") if info[k]]


def write_fixture(peer, tmp: str, key: str) -> dict:
    """A reduced model: MMDetection's state dict, the input, ground truth and its outputs."""
    case, overrides = FIXTURES[key]
    _, cfg_rel, preset = next(c for c in CASES if c[0] == case)
    mm = _mm_model(peer, cfg_rel, reduced=True)
    torch.manual_seed(1)
    img = torch.randint(0, 256, (1, 3, 96, 128), dtype=torch.uint8)
    gt = ground_truth(96, 128, 4)
    det, _ = convert(mm.state_dict(), tmp, key, REPO / preset, overrides)
    with torch.no_grad():
        x, _ = det.data_preprocessor(img, [det_sample(96, 128)])
    ref = mm_outputs(mm, x, gt)
    row = {"case": f"fixture {key} (reduced {case})", **compare(ref, det_outputs(det, img, gt))}
    out = REPO / "tests" / "fixtures" / f"{key}_parity.pt"
    payload = {"state_dict": {k: v.contiguous() for k, v in mm.state_dict().items()}, "img": img, "gt": gt,
               "reference": ref, "overrides": overrides, "preset": preset,
               "source": f"MMDetection 3.3 {cfg_rel}, reduced widths, random weights"}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    row["fixture_kb"] = out.stat().st_size // 1024
    return row


def main() -> int:
    parser = arg_parser("MMDetection YOLOX / RTMDet-Ins checkpoints converted to det: output and loss parity")
    parser.add_argument("--cases", nargs="*", default=[c[0] for c in CASES])
    parser.add_argument("--write-fixture", action="store_true", help="also write tests/fixtures/*_parity.pt")
    args = parser.parse_args()
    peer = start_parity("mmdet real-time parity", args.json)
    if peer is None:
        return 0
    size = (192, 256) if args.quick else (320, 416)
    rows, notes = [], [f"input {size[0]}x{size[1]}, random weights; bounds {BOUNDS}"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg_rel, preset in CASES:
            if name in args.cases:
                row, case_notes = run_case(name, cfg_rel, preset, peer, size, tmp, args.quick)
                print(f"[parity] {row}", file=sys.stderr, flush=True)  # long runs: each row as it lands
                rows.append(row)
                notes += case_notes
        if args.write_fixture:
            rows += [write_fixture(peer, tmp, key) for key in FIXTURES]
    emit("mmdet real-time parity (det vs MMDetection, same converted weights)", rows, notes, args.json)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
