"""Panoptic FPN: loss names, the semantic targets (things merged, stuff shifted, 255 ignored,
padding ignored), one batch learned, the heuristic fusion rules on hand-made instances, and a
prediction in original-image pixels."""
from pathlib import Path

import numpy as np
import pytest
import torch

from det.core.config import load_preset
from det.core.models import build_detector
from det.core.models.seg_heads import HeuristicFusionHead, PanopticFPNHead
from det.core.structures import DetSample, Instances
from det.core.structures.panoptic import PanopticPrediction

PRESETS = Path(__file__).resolve().parents[3] / "presets"
SMALL = ["model.semantic_head.inner_channels=32", "model.semantic_head.norm_cfg.num_groups=8"]


def _model(**extra) -> torch.nn.Module:
    torch.manual_seed(0)
    sets = SMALL + [f"{k}={v}" for k, v in extra.items()]
    return build_detector(load_preset(PRESETS / "demo/panoptic_fpn_r18.yaml", sets)["model"])


def _batch(n: int = 2, size: int = 64):
    """Two squares (things 0 and 3) on two stuff bands (labels 6 top, 7 bottom), one ignored row."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 60, (n, 3, size, size), generator=g).float()
    samples = []
    for i in range(n):
        sem = torch.full((size, size), 6, dtype=torch.uint8)
        sem[size // 2:] = 7
        x[i, 2, size // 2:] += 120.0
        sem[size // 2 - 1] = 255
        boxes = torch.tensor([[4.0, 6.0, 28.0, 30.0], [34.0, 30.0, 60.0, 58.0]])
        m = torch.zeros(2, size, size, dtype=torch.bool)
        for j, (b, lab) in enumerate(zip(boxes.long(), (0, 3))):
            m[j, b[1]:b[3], b[0]:b[2]] = True
            sem[m[j]] = lab
            x[i, j, b[1]:b[3], b[0]:b[2]] = 250.0
        gt = Instances(bboxes=boxes, labels=torch.tensor([0, 3]), masks=m)
        samples.append(DetSample(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size), gt=gt,
                                 gt_sem_seg=sem))
    return x, samples


def test_losses_named_and_one_batch_learned():
    model = _model()
    x, samples = _batch()
    model.train()
    losses = model.loss(x, samples)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask", "loss_seg"}
    assert all(torch.isfinite(v) for v in losses.values())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first_seg = first = None
    for _ in range(8):
        losses = model.loss(x, samples)
        total = sum(losses.values())
        first = first if first is not None else total.item()
        first_seg = first_seg if first_seg is not None else losses["loss_seg"].item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < first
    assert losses["loss_seg"].item() < first_seg
    assert model.semantic_head.conv_logits.weight.grad.abs().sum() > 0


def test_semantic_targets_and_loss_by_hand():
    head = PanopticFPNHead(num_things_classes=2, num_stuff_classes=3, in_channels=8, inner_channels=8,
                           norm_cfg={"type": "GN", "num_groups": 4},
                           loss_seg={"type": "CrossEntropyLoss", "ignore_index": 255, "loss_weight": 0.5})
    sem = torch.tensor([[0, 1, 2, 3], [4, 255, 1, 2]])
    # things 0, 1 -> 3 (num_stuff); stuff 2, 3, 4 -> 0, 1, 2; 255 kept
    assert head.targets(sem).tolist() == [[3, 3, 0, 1], [2, 255, 3, 0]]
    # a 16x16 sample padded to a 32x32 batch: stride-4 targets 8x8, the padding ignored
    feats = [torch.zeros(1, 8, 32 // 2 ** (i + 2), 32 // 2 ** (i + 2)) for i in range(4)]
    seg = torch.full((16, 16), 3, dtype=torch.uint8)
    sample = DetSample(img_shape=(16, 16), batch_input_shape=(32, 32), gt_sem_seg=seg)
    with torch.no_grad():
        head.conv_logits.weight.zero_()
        head.conv_logits.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    loss = head.loss(feats, [sample])["loss_seg"]
    # 16 of 64 cells are class 1 (stuff label 3); CE of logits (0,1,2,3) at class 1, mean over all 64
    ce = torch.logsumexp(torch.tensor([0.0, 1.0, 2.0, 3.0]), 0) - 1.0
    assert loss.item() == pytest.approx(0.5 * ce.item() * 16 / 64, rel=1e-5)


def _inst(masks: list[np.ndarray], scores: list[float], labels: list[int]) -> Instances:
    m = torch.as_tensor(np.stack(masks))
    return Instances(bboxes=torch.zeros(len(masks), 4), scores=torch.tensor(scores), labels=torch.tensor(labels),
                     masks=m)


def _logits(sem: np.ndarray, n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(sem), n).permute(2, 0, 1).float()


def test_fusion_rules_by_hand():
    fusion = HeuristicFusionHead(num_things_classes=2, num_stuff_classes=2,
                                 test_cfg={"mask_overlap": 0.5, "stuff_area_limit": 5})
    h, w = 6, 8
    a = np.zeros((h, w), bool)
    a[0:3, 0:4] = True  # 12 px, score 0.9: laid first
    b = np.zeros((h, w), bool)
    b[1:3, 2:6] = True  # 8 px, 4 under a (0.5, not over): laid on its 4 free pixels
    c = np.zeros((h, w), bool)
    c[0:2, 0:3] = True  # 6 px all under a: dropped
    d = np.zeros((h, w), bool)  # empty mask: dropped
    # semantic argmax: stuff 0 on rows 0-3, stuff 1 on a 3-px spot (under the area limit),
    # the 'things' class (2) on row 5
    sem = np.zeros((h, w), np.int64)
    sem[4, 0:3] = 1
    sem[5] = 2
    pred = fusion.predict_one(_inst([b, a, c, d], [0.8, 0.9, 0.7, 0.95], [1, 0, 1, 0]), _logits(sem, 3))
    assert isinstance(pred, PanopticPrediction)
    segs = {s["id"]: s for s in pred.segments}
    expect = np.zeros((h, w), np.int64)
    expect[a] = 1
    expect[b & ~a] = 2
    stuff = (expect == 0) & (sem == 0)
    expect[stuff] = 3
    np.testing.assert_array_equal(pred.seg_map, expect)
    assert [(segs[i]["label"], segs[i]["isthing"]) for i in (1, 2, 3)] == [(0, True), (1, True), (2, False)]
    assert segs[1]["score"] == pytest.approx(0.9) and segs[2]["score"] == pytest.approx(0.8)
    assert len(segs) == 3  # the small stuff-1 spot and the 'things' class row are VOID
    # the same stuff spot above the limit becomes a segment
    big = HeuristicFusionHead(2, 2, {"mask_overlap": 0.5, "stuff_area_limit": 3})
    pred = big.predict_one(_inst([a], [0.9], [0]), _logits(sem, 3))
    assert sorted((s["label"], int((pred.seg_map == s["id"]).sum())) for s in pred.segments) == [(0, 12), (2, 25), (3, 3)]


def test_fusion_overlap_threshold_and_no_instances():
    fusion = HeuristicFusionHead(1, 1, {"mask_overlap": 0.3, "stuff_area_limit": 1})
    a = np.zeros((4, 4), bool)
    a[:, :2] = True
    b = np.zeros((4, 4), bool)
    b[:, 1:3] = True  # half under a > 0.3: dropped
    pred = fusion.predict_one(_inst([a, b], [0.9, 0.8], [0, 0]), _logits(np.zeros((4, 4), np.int64), 2))
    assert [s["isthing"] for s in pred.segments] == [True, False]
    assert int((pred.seg_map == 1).sum()) == 8 and int((pred.seg_map == 2).sum()) == 8
    empty = Instances(bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long),
                      masks=torch.zeros(0, 4, 4, dtype=torch.bool))
    pred = fusion.predict_one(empty, _logits(np.zeros((4, 4), np.int64), 2))
    assert pred.segments == [{"id": 1, "label": 1, "isthing": False, "score": 1.0}]


def test_predict_in_original_pixels():
    model = _model(**{"model.test_cfg.rcnn.score_thr": 0.0})
    model.eval()
    x, samples = _batch(n=1, size=64)
    samples[0].ori_shape = (96, 80)
    samples[0].scale_factor = (64 / 80, 64 / 96)
    with torch.no_grad():
        preds = model.predict(x, samples)
    pred = preds[0]
    assert isinstance(pred, PanopticPrediction) and pred.seg_map.shape == (96, 80)
    assert isinstance(pred.instances, Instances)
    ids = {s["id"] for s in pred.segments}
    assert set(np.unique(pred.seg_map).tolist()) - {0} <= ids
    for s in pred.segments:
        assert (s["label"] < 6) == s["isthing"]
