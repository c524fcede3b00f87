"""Faster R-CNN R-50-FPN: det beside torchvision's `fasterrcnn_resnet50_fpn` in the same process,
at 800 x 1333 (padded to 800 x 1344), same proposal counts (1000 per level before NMS and 1000
after at test time; 2000 / 2000 when training, 256 RPN and 512 RoI samples per image), random
init. Both models get the same normalised tensor: torchvision's resizing transform is bypassed
(backbone -> rpn -> roi_heads), det runs `extract_feat` -> RPN -> RoI head.

    python benchmarks/two_stage.py [--quick] [--json out.json]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, median_ms  # noqa: E402

PRESET = Path(__file__).resolve().parents[1] / "presets/_base_/models/faster_rcnn_r50_fpn_torchvision.yaml"


def _det_model():
    from det.core.config import load_preset
    from det.core.models import build_detector

    cfg = load_preset(PRESET, [])["model"]
    cfg["data_preprocessor"] = {"type": "DetDataPreprocessor"}  # the input is already normalised
    return build_detector(cfg)


def _targets(h: int, w: int):
    from det.core.structures import DetSample, Instances

    boxes = torch.tensor([[100.0, 120.0, 400.0, 500.0], [600.0, 200.0, 900.0, 450.0], [50.0, 50.0, 120.0, 90.0]])
    boxes = boxes * torch.tensor([w / 1344, h / 800, w / 1344, h / 800])
    labels = torch.tensor([0, 5, 17])
    sample = DetSample(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                       gt=Instances(bboxes=boxes, labels=labels))
    return sample, [{"boxes": boxes, "labels": labels + 1}]


def main() -> None:
    args = arg_parser(__doc__.splitlines()[0]).parse_args()
    import torchvision
    from torchvision.models.detection.image_list import ImageList

    h, w = (416, 704) if args.quick else (800, 1344)
    repeat = 1 if args.quick else 3
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w)
    sample, tv_targets = _targets(h, w)
    det = _det_model()
    tv = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                                              rpn_post_nms_top_n_train=2000)
    images = ImageList(x, [(h, w)])

    def det_forward():
        with torch.no_grad():
            return det.predict(x, [sample], rescale=False)

    def tv_forward():
        with torch.no_grad():
            feats = tv.backbone(x)
            proposals, _ = tv.rpn(images, feats)
            return tv.roi_heads(feats, proposals, [(h, w)])

    det_opt = torch.optim.SGD(det.parameters(), lr=1e-4, momentum=0.9)
    tv_opt = torch.optim.SGD(tv.parameters(), lr=1e-4, momentum=0.9)

    def det_step():
        losses = det.loss(x, [sample])
        det_opt.zero_grad()
        sum(v for k, v in losses.items() if k.startswith("loss")).backward()
        det_opt.step()

    def tv_step():
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
    fwd_det, fwd_tv = median_ms(det_forward, repeat), median_ms(tv_forward, repeat)
    rows.append({"case": f"forward {h}x{w}", "det_ms": fwd_det, "torchvision_ms": fwd_tv, "ratio": fwd_det / fwd_tv,
                 "proposals_det": n_det, "proposals_torchvision": n_tv})
    det.train()
    tv.train()
    step_det, step_tv = median_ms(det_step, repeat), median_ms(tv_step, repeat)
    rows.append({"case": f"train step {h}x{w}", "det_ms": step_det, "torchvision_ms": step_tv,
                 "ratio": step_det / step_tv})
    emit("Faster R-CNN R-50-FPN: det vs torchvision (batch 1, CPU)", rows,
         [f"torch threads {torch.get_num_threads()}; ratio = det / torchvision (lower is better)",
          "train step: forward with losses, backward, SGD step; 2000 RPN proposals, 512 RoI samples"], args.json)


if __name__ == "__main__":
    main()
