"""Parity: DETR, Deformable DETR (+refine, +refine-twostage) and DINO against MMDetection 3.3.

Run with det's python (MMDetection is imported from the peer environment, on det's torch; its
MultiScaleDeformableAttention is mmcv's own, running multi_scale_deformable_attn_pytorch):
    .venv/bin/python benchmarks/parity/detr_family.py [--quick] [--size H W] [--padded] [--cases ...] [--json OUT]
        [--write-fixture tests/fixtures/detr_family_parity.pt]
For each preset (as shipped): MMDetection's model is built from its config with its own
initialisation plus random norm statistics, saved as an MMDetection checkpoint, converted with
`det convert mmdet-weights`, and both models get the same batch of two images.
- detections (eval mode): boxes within 1e-3 px, scores within 1e-5, same labels, same order;
- training losses on that batch with the same targets (train mode, dropout off): every loss term
  of every decoder layer within 1e-4. DINO's denoising noise is made identical by seeding the
  global RNG with the same seed right before each toolkit's loss call (both draw the label and
  box noise with the same ops in the same order).
`--write-fixture` also runs reduced configs (see `reduced`) with weights generated from a seed
(tests/core/models/detr_parity_weights.py) and saves the inputs and MMDetection's outputs for
tests/core/models/test_detr_family_parity.py, which checks det against them without the peer.
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

sys.path.insert(0, str(REPO))
from tests.core.models.detr_parity_weights import seeded_state  # noqa: E402

CASES = [
    ("detr", "detr/detr_r50_8xb2-150e_coco.py", "presets/detr/detr_r50_8xb2-150e_coco.yaml"),
    ("deformable-detr", "deformable_detr/deformable-detr_r50_16xb2-50e_coco.py",
     "presets/deformable_detr/deformable-detr_r50_16xb2-50e_coco.yaml"),
    ("deformable-detr-refine", "deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py",
     "presets/deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.yaml"),
    ("deformable-detr-refine-twostage", "deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py",
     "presets/deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.yaml"),
    ("dino-4scale", "dino/dino-4scale_r50_8xb2-12e_coco.py", "presets/dino/dino-4scale_r50_8xb2-12e_coco.yaml"),
    ("dino-5scale-swin-l", "dino/dino-5scale_swin-l_8xb2-12e_coco.py",
     "presets/dino/dino-5scale_swin-l_8xb2-12e_coco.yaml"),
]
BOX_BOUND, SCORE_BOUND, LOSS_BOUND = 1e-3, 1e-5, 1e-4
FIXTURE_SEED = 7


def reduced(name: str) -> dict:
    """Overrides (dotted key -> value) shrinking a model for the CI fixture, same on both sides:
    ResNet-18 with 4 base channels, 1 encoder and 2 decoder layers with 64-wide FFNs, 5 classes,
    few queries. The width stays 256: MMDetection's two-stage and DINO query embeddings assume it."""
    dino = name.startswith("dino")
    out = {"model.backbone.depth": 18, "model.backbone.base_channels": 4, "model.bbox_head.num_classes": 5,
           "model.num_queries": 12 if dino else 10, "model.test_cfg.max_per_img": 12 if dino else 10,
           "model.neck.in_channels": [32] if name == "detr" else [8, 16, 32],
           "model.encoder.num_layers": 1, "model.decoder.num_layers": 2,
           "model.encoder.layer_cfg.ffn_cfg.feedforward_channels": 64,
           "model.decoder.layer_cfg.ffn_cfg.feedforward_channels": 64}
    if dino:
        out["model.dn_cfg.group_cfg.num_dn_queries"] = 8
    return out


def set_dotted(cfg, key: str, value) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        cfg = cfg[p]
    cfg[parts[-1]] = value


def build_mm(MODELS, cfg, seed: int):
    """MMDetection's model (its init_weights; no pretrained download) with random BN statistics
    and small random values in every parameter its init leaves all zero (the last box layers,
    the deformable attention's offset and weight layers, zero-init residual BNs): with those at
    zero, Deformable DETR's boxes are its reference points whatever the image, and the box
    comparison would not test the network."""
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.05 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))
        for p in model.parameters():
            if not p.any():
                p.copy_(0.01 * torch.randn(p.shape, generator=g))
    return model.eval()


def make_batch(size: tuple[int, int], seed: int, shapes: list[tuple[int, int]]):
    """Two uint8 images and their targets (3 and 2 objects inside each image's own shape)."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8, generator=g)
    targets = []
    for n, (h, w) in zip((3, 2), shapes):
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
        wh = 8 + torch.rand(n, 2, generator=g) * torch.tensor([w * 0.35, h * 0.35])
        targets.append((torch.cat([xy, xy + wh], 1), torch.randint(0, 5, (n,), generator=g)))
    return imgs, targets


def image_shapes(size, padded: bool) -> list[tuple[int, int]]:
    """Per-image (h, w) inside the (h, w) batch: with `padded` the second image is smaller (the
    rest is batch padding, so the models build padding masks and valid ratios)."""
    return [tuple(size), (size[0] * 3 // 4, size[1] * 5 // 6) if padded else tuple(size)]


def det_samples(size, targets, shapes=None):
    from det.core.structures import DetSample, Instances

    return [DetSample(ori_shape=hw, img_shape=hw, pad_shape=hw, batch_input_shape=tuple(size),
                      gt=Instances(bboxes=b.clone(), labels=lab.clone()))
            for (b, lab), hw in zip(targets, shapes or image_shapes(size, False))]


def mm_samples(size, targets, shapes=None):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    out = []
    for (b, lab), hw in zip(targets, shapes or image_shapes(size, False)):
        s = DetDataSample(metainfo={"img_shape": hw, "ori_shape": hw, "pad_shape": hw,
                                    "batch_input_shape": tuple(size), "scale_factor": (1.0, 1.0)})
        s.gt_instances = InstanceData(bboxes=b.clone(), labels=lab.clone())
        out.append(s)
    return out


def no_dropout(model: torch.nn.Module) -> None:
    """Dropout and stochastic depth (Swin's DropPath: mmcv's and det's) off in train mode."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout) or type(m).__name__ == "DropPath":
            m.eval()


def run_pair(mm, det, imgs, size, targets, timing: bool, shapes=None) -> dict:
    """Detections (eval) and losses (train, dropout off, same RNG seed) of both models."""
    x, _ = det.data_preprocessor(imgs, det_samples(size, targets, shapes))
    with torch.no_grad():
        mm_pred = [s.pred_instances for s in mm.predict(x, mm_samples(size, targets, shapes), rescale=True)]
        det_pred = det.predict(imgs, det_samples(size, targets, shapes), rescale=True)
    mm.train(), det.train()
    no_dropout(mm), no_dropout(det)
    torch.manual_seed(123)
    mm_loss = {k: v.detach() for k, v in mm.loss(x, mm_samples(size, targets, shapes)).items()}
    torch.manual_seed(123)
    det_loss = {k: v.detach() for k, v in det.loss(imgs, det_samples(size, targets, shapes)).items()}
    mm.eval(), det.eval()
    out = {"mm_pred": [(p.bboxes, p.scores, p.labels) for p in mm_pred],
           "det_pred": [(p.bboxes, p.scores, p.labels) for p in det_pred], "mm_loss": mm_loss, "det_loss": det_loss}
    if timing:
        with torch.no_grad():
            out["det_ms"] = median_ms(lambda: det.predict(imgs, det_samples(size, targets)), repeat=3)
            out["peer_ms"] = median_ms(lambda: mm.predict(x, mm_samples(size, targets)), repeat=3)
    return out


def compare(res: dict) -> dict:
    """Max differences of detections (in order) and of every loss term. Random weights give
    many queries nearly the same score: where two detections' scores differ by less than the
    score bound their order is a tie, so a position whose box misses the bound may take its box
    from another detection of the same label inside that tie (counted as `tie_swaps`)."""
    box = score = 0.0
    labels_equal, swaps = True, 0
    for (mb, ms, ml), (db, ds, dl) in zip(res["mm_pred"], res["det_pred"]):
        labels_equal &= len(mb) == len(db)
        if len(mb) == len(db) and len(mb):
            diff, n, same = tie_aware_diff(mb, ms, ml, db, dl)
            box, score, swaps = max(box, diff), max(score, float((ms - ds).abs().max())), swaps + n
            labels_equal &= same
    mm_l, det_l = res["mm_loss"], res["det_loss"]
    common = [k for k in mm_l if k in det_l]
    loss = max((float((mm_l[k].float().sum() - det_l[k].float().sum()).abs()) for k in common), default=0.0)
    missing = sorted(set(mm_l) ^ set(det_l))
    ok = labels_equal and box <= BOX_BOUND and score <= SCORE_BOUND and loss <= LOSS_BOUND and not missing
    return {"boxes_max_abs": box, "scores_max_abs": score, "labels_order_equal": labels_equal, "tie_swaps": swaps,
            "loss_terms": len(common), "loss_max_abs": loss, "loss_keys_differing": ",".join(missing[:4]),
            "within_bounds": ok}


def tie_aware_diff(mb, ms, ml, db, dl) -> tuple[float, int, bool]:
    """Max box difference in order, and whether the labels agree in order, where a position
    whose label differs or whose box misses the bound may take the closest box among
    MMDetection's detections of det's label whose score is within SCORE_BOUND of its own."""
    per = (mb - db).abs().amax(1)
    swaps, same = 0, True
    for i in torch.nonzero((per > BOX_BOUND) | (ml != dl)).flatten().tolist():
        tie = ((ms - ms[i]).abs() <= SCORE_BOUND) & (ml == dl[i])
        best = (mb[tie] - db[i]).abs().amax(1).min() if tie.any() else torch.tensor(float("inf"))
        if best <= BOX_BOUND:
            per[i], swaps = best, swaps + 1
        else:
            same &= bool(ml[i] == dl[i])
    return float(per.max()), swaps, same


def convert_and_build(mm, preset: Path, overrides: list[str], tmp: str, name: str):
    from det.core.convert.weights import convert_mmdet_weights
    from det.core.fileio import load_checkpoint
    from det.core.models import build_detector

    src = Path(tmp) / f"{name}.pth"
    torch.save({"state_dict": mm.state_dict()}, src)
    info = convert_mmdet_weights(src, Path(tmp) / f"{name}_det.pt", preset, overrides=overrides, force=True)
    ckpt = load_checkpoint(Path(tmp) / f"{name}_det.pt")
    det = build_detector(ckpt["preset"]["model"])
    det.load_state_dict(ckpt["state_dict"], strict=True)
    return det.eval(), info


def case(name, cfg_rel, preset, peer, size, tmp, small: bool, timing: bool, padded: bool = False):
    MODELS, Config, cfg_dir = peer
    cfg = Config.fromfile(os.path.join(cfg_dir, cfg_rel))
    overrides = reduced(name) if small else {}
    for k, v in overrides.items():
        set_dotted(cfg, k, v)
    mm = build_mm(MODELS, cfg, seed=0)
    weight_shapes = {k: list(v.shape) for k, v in mm.state_dict().items()}
    if small:  # weights the CI test regenerates from the seed (the fixture holds none)
        mm.load_state_dict(seeded_state(weight_shapes, FIXTURE_SEED), strict=True)
    import yaml

    det_over = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                for k, v in overrides.items()]
    det, info = convert_and_build(mm, REPO / preset, det_over, tmp, name)
    shapes = image_shapes(size, padded)
    imgs, targets = make_batch(size, seed=1, shapes=shapes)
    res = run_pair(mm, det, imgs, size, targets, timing, shapes)
    label = name + (" (reduced)" if small else "") + (", padded batch" if padded else "")
    row = {"case": label, "unmapped": len(info["unmapped"]),
           "missing": len(info["missing"]), **compare(res)}
    if timing:
        row.update(det_ms=res["det_ms"], peer_ms=res["peer_ms"], ratio=res["peer_ms"] / res["det_ms"])
    fixture = {"overrides": det_over, "preset": preset, "weight_shapes": weight_shapes, "seed": FIXTURE_SEED,
               "imgs": imgs, "targets": targets, "size": list(size), "shapes": [list(hw) for hw in shapes],
               "mm_pred": res["mm_pred"], "mm_loss": res["mm_loss"]}
    return row, fixture


def main() -> int:
    parser = arg_parser("DETR family: det vs MMDetection with the same converted weights")
    parser.add_argument("--cases", nargs="*", default=[c[0] for c in CASES])
    parser.add_argument("--write-fixture", help="also run the reduced configs and save their fixture here")
    parser.add_argument("--reduced-only", action="store_true", help="with --write-fixture: skip the full presets")
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                        help="batch size (h, w) for the presets as shipped (default 480 640, COCO's commonest "
                             "image size; --quick: 128 160)")
    parser.add_argument("--padded", action="store_true", help="also run each preset on a padded batch")
    parser.add_argument("--no-timing", action="store_true", help="skip the det vs MMDetection predict timing")
    args = parser.parse_args()
    peer = start_parity("DETR-family parity", args.json)
    if peer is None:
        return 0
    size = tuple(args.size) if args.size else (128, 160) if args.quick else (480, 640)
    rows, fixtures = [], {}
    notes = [f"presets as shipped: batch of 2 images {size[0]}x{size[1]}, random weights; bounds: boxes {BOX_BOUND} px, scores "
             f"{SCORE_BOUND}, losses {LOSS_BOUND}; DINO's denoising noise identical (same RNG seed)"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg_rel, preset in CASES:
            if name in args.cases and not args.reduced_only:
                for padded in (False, True) if args.padded else (False,):
                    rows.append(case(name, cfg_rel, preset, peer, size, tmp, small=False,
                                     timing=not (padded or args.no_timing),
                                     padded=padded)[0])
                print(rows[-1], file=sys.stderr, flush=True)
            if args.write_fixture and name in args.cases:
                for padded in (False, True):
                    row, fixtures[name + ("-padded" if padded else "")] = case(
                        name, cfg_rel, preset, peer, (64, 96), tmp, small=True, timing=False, padded=padded)
                    rows.append(row)
    if args.write_fixture:
        torch.save(fixtures, args.write_fixture)
        notes.append(f"fixture: {args.write_fixture} ({os.path.getsize(args.write_fixture) / 1e6:.2f} MB), reduced "
                     "configs on 2 images 64x96")
    emit("DETR-family parity (det vs MMDetection 3.3, same converted weights)", rows, notes, args.json)
    return 0 if all(r["within_bounds"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
