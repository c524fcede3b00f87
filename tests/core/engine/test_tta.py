"""Test-time augmentation: every view (flip, scales) maps back to the same original box and the
merge keeps one detection per object."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from det.core.engine.tta import TTAPredictor, merge_instances
from det.core.structures import DetSample, Instances
from det.core.structures.boxes import flip_boxes


class ThresholdDetector(nn.Module):
    """'Detects' the bright square in each input image (within img_shape) and maps its box back
    to the original image the way det's heads do: undo the flip in img_shape, then the scale."""

    def predict(self, inputs, samples):
        out = []
        for img, s in zip(inputs, samples):
            h, w = s.img_shape
            ys, xs = torch.nonzero(img[0, :h, :w] > 128, as_tuple=True)
            box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
            if s.flip_direction:
                box = flip_boxes(box, h, w, s.flip_direction)
            sx, sy = s.scale_factor
            box = box / torch.tensor([sx, sy, sx, sy])
            out.append(Instances(bboxes=box, labels=torch.tensor([2]), scores=torch.tensor([0.9])))
        return out


def test_views_map_back_to_the_original_box():
    # original 40x60 image resized x2 (80x120) into a padded 96x128 batch; square at x 10-30, y 5-15
    img = torch.zeros((1, 3, 96, 128), dtype=torch.uint8)
    img[:, :, 10:30, 20:60] = 255
    sample = DetSample(ori_shape=(40, 60), img_shape=(80, 120), scale_factor=(2.0, 2.0), batch_input_shape=(96, 128))
    seen = []

    class Spy(ThresholdDetector):
        def predict(self, inputs, samples):
            preds = super().predict(inputs, samples)
            seen.append((samples[0].flip_direction, samples[0].img_shape, preds[0].bboxes))
            return preds

    tta = TTAPredictor(scales=(1.0, 0.5, 1.5), flip=True)
    merged = tta(Spy(), img, [sample])[0]
    assert len(seen) == 6 and {s[0] for s in seen} == {None, "horizontal"}
    assert {s[1] for s in seen} == {(80, 120), (40, 60), (120, 180)}
    for _, _, box in seen:
        assert torch.allclose(box, torch.tensor([[10.0, 5.0, 30.0, 15.0]]), atol=0.5)
    assert len(merged) == 1 and merged.labels.tolist() == [2]
    assert sample.flip_direction is None and sample.img_shape == (80, 120)  # inputs untouched


def test_merge_keeps_per_class_maxima():
    a = Instances(bboxes=torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]), labels=torch.tensor([0, 1]), scores=torch.tensor([0.5, 0.8]))
    b = Instances(bboxes=torch.tensor([[1.0, 0, 10, 10], [0, 0, 10, 10]]), labels=torch.tensor([0, 1]), scores=torch.tensor([0.7, 0.6]))
    m = merge_instances([a, b], iou_thr=0.5)
    assert m.scores.tolist() == pytest.approx([0.8, 0.7, 0.6])
    assert m.labels.tolist() == [1, 0, 1]
