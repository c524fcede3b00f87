"""Faster R-CNN R-50-FPN: det beside torchvision's `fasterrcnn_resnet50_fpn` in the same process,
at 800 x 1333 (padded to 800 x 1344), same proposal counts (1000 per level before NMS and 1000
after at test time; 2000 / 2000 when training, 256 RPN and 512 RoI samples per image), random
init. Both models get the same normalised tensor: torchvision's resizing transform is bypassed
(backbone -> rpn -> roi_heads), det runs `extract_feat` -> RPN -> RoI head, with torchvision's
weights converted by `det convert torchvision-weights` (same proposals). torchvision's model
is built as its builder does with ImageNet weights (FrozenBatchNorm2d, conv1 + layer1 frozen),
matching det's preset (frozen_stages 1, norm_eval). det's forward runs with BatchNorm folded into
the convs (fuse_conv_bn, as `det test` / `det infer`); the unfused and bf16 autocast times are
reported beside it. ratio = torchvision / det (> 1: det faster).

    python benchmarks/two_stage.py [--quick] [--threads N] [--json out.json]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, interleaved_ms  # noqa: E402
from models import fused_copy, tv_model  # noqa: E402

PRESET = Path(__file__).resolve().parents[1] / "presets/_base_/models/faster_rcnn_r50_fpn_torchvision.yaml"


def _det_model(tv: torch.nn.Module):
    """det's Faster R-CNN holding torchvision's weights (det's converter), so that both make the
    same proposals (the RPNs compute the same boxes) and the RoI heads see the same counts."""
    import tempfile

    from det.core.convert.weights import convert_torchvision_weights
    from det.core.fileio import load_checkpoint
    from det.core.models import build_detector

    with tempfile.TemporaryDirectory() as tmp:
        torch.save(tv.state_dict(), Path(tmp) / "tv.pth")
        convert_torchvision_weights(Path(tmp) / "tv.pth", Path(tmp) / "det.pt", preset=PRESET)
        ckpt = load_checkpoint(Path(tmp) / "det.pt")
    cfg = dict(ckpt["preset"]["model"], data_preprocessor={"type": "DetDataPreprocessor"})  # input is normalised
    model = build_detector(cfg)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model


def _targets(h: int, w: int):
    from det.core.structures import DetSample, Instances

    boxes = torch.tensor([[100.0, 120.0, 400.0, 500.0], [600.0, 200.0, 900.0, 450.0], [50.0, 50.0, 120.0, 90.0]])
    boxes = boxes * torch.tensor([w / 1344, h / 800, w / 1344, h / 800])
    labels = torch.tensor([0, 5, 17])
    sample = DetSample(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                       gt=Instances(bboxes=boxes, labels=labels))
    return sample, [{"boxes": boxes, "labels": labels + 1}]


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    from torchvision.models.detection.image_list import ImageList

    h, w = (416, 704) if args.quick else (800, 1344)
    repeat = 2 if args.quick else 3
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w)
    sample, tv_targets = _targets(h, w)
    tv = tv_model("faster_rcnn", h, w, num_classes=91)
    det = _det_model(tv)
    fused = fused_copy(det)
    images = ImageList(x, [(h, w)])

    def det_forward(model, bf16=False):
        def run():
            model.eval()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model.predict(x, [sample], rescale=False)
        return run

    def tv_forward():
        tv.eval()
        with torch.no_grad():
            feats = tv.backbone(x)
            proposals, _ = tv.rpn(images, feats)
            return tv.roi_heads(feats, proposals, [(h, w)])

    def det_step(bf16=False):
        opt = torch.optim.SGD([p for p in det.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

        def run():
            det.train()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                losses = det.loss(x, [sample])
            opt.zero_grad()
            sum(v for k, v in losses.items() if k.startswith("loss")).backward()
            opt.step()
        return run

    tv_opt = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def tv_step():
        tv.train()
        feats = tv.backbone(x)
        proposals, rpn_losses = tv.rpn(images, feats, tv_targets)
        _, roi_losses = tv.roi_heads(feats, proposals, [(h, w)], tv_targets)
        tv_opt.zero_grad()
        sum({**rpn_losses, **roi_losses}.values()).backward()
        tv_opt.step()

    det.eval()
    tv.eval()
    with torch.no_grad():
        n_det = len(det.rpn_head.predict_by_feat(*det.rpn_head(det.extract_feat(x)), samples=[sample])[0])
        n_tv = len(tv.rpn(images, tv.backbone(x))[0][0])
    rows = []
    t = interleaved_ms({"det": det_forward(fused), "det_unfused": det_forward(det), "peer": tv_forward,
                        "det_bf16": det_forward(fused, bf16=True)}, repeat)
    rows.append({"case": f"forward {h}x{w}", "det_ms": t["det"], "det_unfused_ms": t["det_unfused"],
                 "peer": "torchvision", "peer_ms": t["peer"], "ratio": t["peer"] / t["det"],
                 "det_bf16_ms": t["det_bf16"], "bf16_speedup": t["det"] / t["det_bf16"],
                 "proposals_det": n_det, "proposals_peer": n_tv})
    print(f"[bench] {rows[-1]}", file=sys.stderr, flush=True)
    t = interleaved_ms({"det": det_step(), "peer": tv_step, "det_bf16": det_step(bf16=True)}, repeat)
    rows.append({"case": f"train step {h}x{w}", "det_ms": t["det"], "peer": "torchvision", "peer_ms": t["peer"],
                 "ratio": t["peer"] / t["det"], "det_bf16_ms": t["det_bf16"], "bf16_speedup": t["det"] / t["det_bf16"]})
    emit("Faster R-CNN R-50-FPN: det vs torchvision (batch 1, CPU)", rows,
         [f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {repeat} interleaved runs after "
          "1 warm-up; ratio = peer_ms / det_ms (> 1: det faster)",
          "torchvision: FrozenBatchNorm2d, trainable_backbone_layers=3 (its fine-tuning configuration); det: "
          "frozen_stages 1, norm_eval, BN affine trainable in layer2-4 (MMDetection's); det forward with BN folded "
          "(det_unfused_ms: as trained)",
          "train step: forward with losses, backward, SGD step; 2000 RPN proposals, 512 RoI samples"], args.json)


if __name__ == "__main__":
    main()
