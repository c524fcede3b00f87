"""Two-stage detectors end to end on tiny inputs: losses (names, finite, gradients, stage
weights), training lowers the loss, predictions mapped back to the original image (boxes and
pasted masks, flips undone), config errors naming the key."""
from pathlib import Path

import pytest
import torch

from det.core.config import load_preset
from det.core.errors import ConfigError
from det.core.models import build_detector
from det.core.structures import DetSample, Instances

PRESETS = Path(__file__).resolve().parents[3] / "presets"


def _model(name: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    sets = [f"{k}={v}" for k, v in extra.items()]
    return build_detector(load_preset(PRESETS / "_base_/models" / name, sets)["model"])


def _batch(n: int = 2, size: int = 96, masks: bool = True):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (n, 3, size, size), generator=g).float()
    samples = []
    for i in range(n):
        boxes = torch.tensor([[8.0, 10.0, 50.0, 60.0], [40.0, 30.0, 90.0, 80.0]])
        m = torch.zeros(2, size, size, dtype=torch.bool)
        for j, b in enumerate(boxes.long()):
            m[j, b[1]:b[3], b[0]:b[2]] = True
            x[i, :, b[1]:b[3], b[0]:b[2]] = 255.0 * j  # learnable content
        gt = Instances(bboxes=boxes, labels=torch.tensor([0, 3]), masks=m if masks else None)
        samples.append(DetSample(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size), gt=gt))
    return x, samples


def _shrink(**extra):
    base = {"model.backbone.depth": 18, "model.neck.in_channels": "[64,128,256,512]", "model.neck.out_channels": 32,
            "model.rpn_head.in_channels": 32, "model.rpn_head.feat_channels": 32,
            "model.train_cfg.rpn_proposal.max_per_img": 100}
    base.update(extra)
    return base


def _roi(name: str, masks: bool = False, cascade: bool = False) -> dict:
    out = {"model.roi_head.bbox_roi_extractor.out_channels": 32}
    if cascade:
        for i in range(3):
            out[f"model.roi_head.bbox_head.{i}.in_channels"] = 32
            out[f"model.roi_head.bbox_head.{i}.fc_out_channels"] = 64
            out[f"model.roi_head.bbox_head.{i}.num_classes"] = 4
    else:
        out.update({"model.roi_head.bbox_head.in_channels": 32, "model.roi_head.bbox_head.fc_out_channels": 64,
                    "model.roi_head.bbox_head.num_classes": 4})
    if masks:
        out.update({"model.roi_head.mask_roi_extractor.out_channels": 32, "model.roi_head.mask_head.in_channels": 32,
                    "model.roi_head.mask_head.conv_out_channels": 16, "model.roi_head.mask_head.num_classes": 4})
    return out


def test_mask_rcnn_losses_train_and_predict():
    model = _model("mask_rcnn_r50_fpn.yaml", **_shrink(**_roi("mask", masks=True)))
    x, samples = _batch()
    model.train()
    losses = model.loss(x, samples)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = None
    for _ in range(6):
        losses = model.loss(x, samples)
        total = sum(losses.values())
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < first
    assert model.roi_head.mask_head.conv_logits.weight.grad.abs().sum() > 0

    model.eval()
    x1, s1 = _batch(1)
    s1[0].ori_shape = (48, 64)  # network input is the original resized by (1.5, 2)
    s1[0].scale_factor = (1.5, 2.0)
    s1[0].flip_direction = "horizontal"
    model.roi_head.test_cfg.score_thr = 0.0
    with torch.no_grad():
        pred = model.predict(x1, s1)[0]
        raw = model.predict(x1, _batch(1)[1], rescale=False)[0]
    assert len(pred) > 0 and pred.masks.shape == (len(pred), 48, 64) and pred.masks.dtype == torch.bool
    assert raw.masks.shape == (len(raw), 96, 96)
    # boxes: unflipped in the 96-px input, then divided by the scale factor
    expected = torch.stack([96 - raw.bboxes[:, 2], raw.bboxes[:, 1], 96 - raw.bboxes[:, 0], raw.bboxes[:, 3]], 1)
    expected = expected / torch.tensor([1.5, 2.0, 1.5, 2.0])
    expected = torch.minimum(expected, torch.tensor([64.0, 48.0, 64.0, 48.0]))
    assert torch.allclose(pred.bboxes, expected, atol=1e-4)
    # each pasted mask lies within its box (plus the one-pixel margin of pasting)
    for box, mask in zip(pred.bboxes, pred.masks):
        ys, xs = mask.nonzero(as_tuple=True)
        if len(xs):
            assert xs.min() >= box[0].floor() - 1 and xs.max() <= box[2].ceil() + 1


def test_cascade_rcnn_stage_losses():
    model = _model("cascade_rcnn_r50_fpn.yaml", **_shrink(**_roi("cascade", cascade=True)))
    x, samples = _batch(masks=False)
    model.train()
    losses = model.loss(x, samples)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox"} | {f"loss_{k}_s{i}" for k in ("cls", "bbox")
                                                               for i in range(3)}
    sum(losses.values()).backward()
    for i in range(3):
        assert model.roi_head.bbox_head[i].fc_cls.weight.grad.abs().sum() > 0
    assert model.roi_head.stage_loss_weights == [1.0, 0.5, 0.25]
    assert [a.pos_iou_thr for _, a, _ in model.roi_head.stage_train] == [0.5, 0.6, 0.7]
    model.eval()
    model.roi_head.test_cfg.score_thr = 0.0
    with torch.no_grad():
        preds = model.predict(*_batch(masks=False))
    assert len(preds) == 2 and all(len(p) > 0 and p.scores.max() <= 1 for p in preds)


def _cascade_mask_model(**extra) -> torch.nn.Module:
    roi = _roi("cascade", cascade=True)
    roi.update({"model.roi_head.mask_roi_extractor.out_channels": 32, "model.roi_head.mask_head.in_channels": 32,
                "model.roi_head.mask_head.conv_out_channels": 16, "model.roi_head.mask_head.num_classes": 4})
    return _model("cascade_mask_rcnn_r50_fpn.yaml", **_shrink(**roi, **extra))


def test_cascade_mask_rcnn_mask_stages_losses_and_weights():
    model = _cascade_mask_model()
    assert len({id(m) for m in [*model.roi_head.mask_head, *model.roi_head.mask_roi_extractor]}) == 6
    x, samples = _batch()
    model.train()
    torch.manual_seed(3)
    losses = model.loss(x, samples)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox"} | {f"loss_{k}_s{i}" for k in ("cls", "bbox", "mask")
                                                               for i in range(3)}
    sum(losses.values()).backward()
    for i in range(3):
        assert model.roi_head.mask_head[i].conv_logits.weight.grad.abs().sum() > 0
    # the same batch and sampling with unit stage weights: the shipped 1 / 0.5 / 0.25 scale each stage
    model.roi_head.stage_loss_weights = [1.0, 1.0, 1.0]
    torch.manual_seed(3)
    unit = model.loss(x, samples)
    for i, w in enumerate([1.0, 0.5, 0.25]):
        assert losses[f"loss_mask_s{i}"].item() == pytest.approx(w * unit[f"loss_mask_s{i}"].item(), rel=1e-6)
        assert unit[f"loss_mask_s{i}"].item() > 0


def test_cascade_mask_rcnn_averages_stage_probabilities():
    """Constant mask logits per stage (bias only): +20 / -3 / -3 average to probability 0.37 (empty
    masks; averaging logits would give 4.7, full masks); +20 / +20 / -3 to 0.68 (masks fill boxes)."""
    model = _cascade_mask_model().eval()
    model.roi_head.test_cfg.score_thr = 0.0
    x, samples = _batch(1)
    areas = []
    for biases in ([20.0, -3.0, -3.0], [20.0, 20.0, -3.0]):
        with torch.no_grad():
            for head, b in zip(model.roi_head.mask_head, biases):
                head.conv_logits.weight.zero_()
                head.conv_logits.bias.fill_(b)
            pred = model.predict(x, samples)[0]
        assert len(pred) > 0 and pred.masks.shape == (len(pred), 96, 96)
        areas.append(pred.masks.flatten(1).sum(1).float())
    assert areas[0].sum() == 0
    box_areas = (pred.bboxes[:, 2] - pred.bboxes[:, 0]) * (pred.bboxes[:, 3] - pred.bboxes[:, 1])
    assert torch.allclose(areas[1], box_areas, rtol=0.3, atol=4)
    with torch.no_grad():  # raw forward: 3 box stages, then 3 mask stages on the first max_per_img RoIs
        raw = model.roi_head(model.extract_feat(x), [samples[0].gt.bboxes])
    assert len(raw) == 6 and raw[3].shape == (2, 4, 28, 28)


def test_faster_rcnn_without_gt_and_config_errors():
    model = _model("faster_rcnn_r50_fpn.yaml", **_shrink(**_roi("faster")))
    x, samples = _batch(masks=False)
    samples[1].gt = Instances()  # an image without objects: only negatives
    model.train()
    losses = model.loss(x, samples)
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ConfigError, match="model.test_cfg.rcnn.score_th"):
        _model("faster_rcnn_r50_fpn.yaml", **{"model.test_cfg.rcnn.score_th": 0.1})
    with pytest.raises(ConfigError, match="model.roi_head.bbox_roi_extractor.roi_layer.type"):
        _model("faster_rcnn_r50_fpn.yaml", **{"model.roi_head.bbox_roi_extractor.roi_layer.type": "RoIPool"})
    with pytest.raises(ConfigError, match="model.rpn_head.loss_cls"):
        _model("faster_rcnn_r50_fpn.yaml", **{"model.rpn_head.loss_cls.type": "FocalLoss"})


def test_faster_rcnn_overfits_one_batch():
    """40 Adam steps on one batch: the two best detections are the two objects, right classes."""
    from torchvision.ops import box_iou

    model = _model("faster_rcnn_r50_fpn.yaml", **_shrink(**_roi("faster")))
    x, samples = _batch(masks=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(40):
        loss = sum(model.loss(x, samples).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model.predict(x[:1], samples[:1])[0]
    iou = box_iou(pred.bboxes[:2], samples[0].gt.bboxes)
    best = iou.argmax(1)
    assert sorted(best.tolist()) == [0, 1] and (iou.max(1).values > 0.5).all()
    assert torch.equal(pred.labels[:2], samples[0].gt.labels[best])
