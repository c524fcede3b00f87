"""Parity with torchvision's Faster R-CNN: its random-init weights converted with det's
converter into presets/_base_/models/faster_rcnn_r50_fpn_torchvision.yaml give the same
detections (boxes, scores, labels) in eval mode on identical preprocessed tensors."""
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models.detection.image_list import ImageList

from det.core.convert.weights import COCO_IDS, convert_torchvision_weights
from det.core.fileio import load_checkpoint
from det.core.models import build_detector
from det.core.structures import DetSample

PRESET = Path(__file__).resolve().parents[3] / "presets/_base_/models/faster_rcnn_r50_fpn_torchvision.yaml"
UNUSED_IDS = sorted(set(range(1, 91)) - set(COCO_IDS))


def _torchvision_model() -> torch.nn.Module:
    torch.manual_seed(0)
    tv = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in tv.modules():  # non-trivial frozen norms (random init leaves them identity)
            if isinstance(m, torchvision.ops.misc.FrozenBatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        pred = tv.roi_heads.box_predictor
        # sharper class scores than random init gives (so that many pass score_thresh 0.05), and
        # the 10 COCO ids without a category never win (as in trained weights): det keeps 80 classes
        pred.cls_score.weight.mul_(8.0)
        pred.cls_score.weight[UNUSED_IDS] = 0.0
        pred.cls_score.bias[UNUSED_IDS] = -1.0e4
    return tv


@pytest.mark.slow
def test_faster_rcnn_detections_match_torchvision(tmp_path):
    tv = _torchvision_model()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    info = convert_torchvision_weights(tmp_path / "tv.pth", tmp_path / "det.pt", preset=PRESET)
    assert info["unmapped"] == [] and info["missing"] == []
    ckpt = load_checkpoint(tmp_path / "det.pt")
    model_cfg = dict(ckpt["preset"]["model"], data_preprocessor={"type": "DetDataPreprocessor"})
    det = build_detector(model_cfg).eval()
    det.load_state_dict(ckpt["state_dict"], strict=True)

    h, w = 256, 320  # multiples of 64: torchvision derives P6's stride as image size // feature size
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, h, w, generator=g)  # already normalised and padded
    with torch.no_grad():
        feats = tv.backbone(x)
        images = ImageList(x, [(h, w)])
        proposals, _ = tv.rpn(images, feats)
        ref = tv.roi_heads(feats, proposals, [(h, w)])[0][0]
        sample = DetSample(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
        ours = det.predict(x, [sample], rescale=False)[0]
        det_props = det.rpn_head.predict_by_feat(*det.rpn_head(det.extract_feat(x)), samples=[sample])[0]

    assert len(det_props) == len(proposals[0]) > 100
    assert (det_props.bboxes - proposals[0]).abs().max().item() <= 1e-4
    assert len(ref["boxes"]) >= 20  # the comparison covers many detections
    assert len(ours) == len(ref["boxes"])
    assert torch.equal(torch.as_tensor(COCO_IDS)[ours.labels], ref["labels"])
    assert (ours.scores - ref["scores"]).abs().max().item() <= 1e-4
    assert (ours.bboxes - ref["boxes"]).abs().max().item() <= 1e-3  # px; a few float32 ulps at 320
    # the RoI head's class-specific regression moved the boxes away from the proposals
    nearest = (ours.bboxes[:, None] - det_props.bboxes[None]).abs().amax(-1).amin(1)
    assert nearest.max().item() > 0.01
