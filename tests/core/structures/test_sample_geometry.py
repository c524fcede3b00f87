"""Per-sample geometry as DetSample methods: resize, flip and padding undone by hand-computed values."""
from __future__ import annotations

import torch

from det.core.structures import DetSample, Instances


def _sample(**kw) -> DetSample:
    base = dict(img_shape=(60, 80), ori_shape=(30, 40), scale_factor=(2.0, 2.0), batch_input_shape=(64, 96))
    return DetSample(**{**base, **kw})


def test_boxes_to_original_undoes_flip_then_scale_then_clips():
    s = _sample(flip_direction="horizontal")
    boxes = torch.tensor([[30.0, 20, 46, 32], [-4, -4, 24, 20]])
    # unflip in the input width 80: (34, 20, 50, 32) and (56, -4, 84, 20); / 2; clip to 40 x 30
    out = s.boxes_to_original(boxes)
    torch.testing.assert_close(out, torch.tensor([[17.0, 10, 25, 16], [28, 0, 40, 10]]))
    torch.testing.assert_close(s.boxes_to_original(boxes, clip=False)[1], torch.tensor([28.0, -2, 42, 10]))
    torch.testing.assert_close(_sample().unscale_boxes(boxes[:1]), torch.tensor([[15.0, 10, 23, 16]]))


def test_shapes():
    s = _sample(pad_shape=(64, 80))
    assert s.input_shape == (60, 80) and s.valid_shape == (64, 80)
    assert s.output_shape() == (30, 40) and s.output_shape(rescale=False) == (60, 80)
    bare = DetSample(batch_input_shape=(32, 48))
    assert bare.input_shape == (32, 48) == bare.valid_shape == bare.output_shape()


def test_unflip_maps_and_ground_truth_in_original():
    maps = torch.arange(6.0).reshape(1, 2, 3)
    torch.testing.assert_close(_sample(flip_direction="vertical").unflip_maps(maps), maps.flip(-2))
    torch.testing.assert_close(_sample(flip_direction="diagonal").unflip_maps(maps), maps.flip(-1).flip(-2))
    assert _sample().unflip_maps(maps) is maps
    gt = Instances(bboxes=torch.tensor([[0.0, 0, 20, 10]]), labels=torch.tensor([3]))
    back = _sample(flip_direction="horizontal", gt=gt).gt_in_original()
    torch.testing.assert_close(back.bboxes, torch.tensor([[30.0, 0, 40, 5]]))
    assert back.labels.tolist() == [3]


def test_view_follows_a_test_time_resize():
    s = _sample(scale_factor=(0.5, 0.5), img_shape=(100, 200))
    v = s.view(50, 100, flip=True)
    assert v.img_shape == (50, 100) and v.scale_factor == (0.25, 0.25) and v.flip_direction == "horizontal"
    assert s.img_shape == (100, 200) and s.flip_direction is None  # the original is untouched
