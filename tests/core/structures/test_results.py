"""`Instances`, the one result type: torch and numpy views, indexing, filtering, COCO records."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from det.core.errors import DataError
from det.core.inference.prediction import Prediction, from_instances
from det.core.structures import Instances, rle_to_bitmap


def _inst() -> Instances:
    masks = torch.zeros((3, 4, 5), dtype=torch.bool)
    masks[1, 1:3, 2:4] = True
    return Instances(bboxes=torch.tensor([[0.0, 0, 2, 2], [1, 1, 4, 3], [0, 0, 5, 4]]),
                     labels=torch.tensor([0, 2, 1]), scores=torch.tensor([0.9, 0.4, 0.7]), masks=masks)


def test_numpy_torch_views_round_trip():
    inst = _inst()
    view = inst.numpy()
    assert isinstance(view, Instances) and isinstance(view.bboxes, np.ndarray) and view.masks.dtype == bool
    back = view.to("cpu")
    assert all(isinstance(getattr(back, k), torch.Tensor) for k in ("bboxes", "labels", "scores", "masks"))
    torch.testing.assert_close(back.bboxes, inst.bboxes)
    assert inst.cpu().bboxes.device.type == "cpu" and view.cpu() is not view and len(view) == 3
    half = Instances(bboxes=inst.bboxes.to(torch.bfloat16), labels=inst.labels)
    assert half.numpy().bboxes.dtype == np.float32  # numpy has no bfloat16


@pytest.mark.parametrize("index", [1, [1], np.array([False, True, False]), torch.tensor([1]), slice(1, 2)])
def test_indexing_selects_every_per_instance_field(index):
    for inst in (_inst(), _inst().numpy()):
        one = inst[index]
        assert len(one) == 1 and one.labels.tolist() == [2] and one.masks.shape == (1, 4, 5)


def test_filter_by_score_and_class():
    inst = _inst()
    assert inst.filter(score_thr=0.5).labels.tolist() == [0, 1]
    assert inst.filter(classes=[1, 2]).labels.tolist() == [2, 1]
    assert len(inst.filter(score_thr=0.5, classes=[2])) == 0


def test_to_coco_records_with_category_ids_masks_and_rounding():
    recs = _inst().to_coco(7, cat_ids=[10, 20, 30])
    assert [r["category_id"] for r in recs] == [10, 30, 20] and recs[1]["bbox"] == [1.0, 1.0, 3.0, 2.0]
    assert recs[0]["image_id"] == 7 and recs[0]["score"] == pytest.approx(0.9)
    assert rle_to_bitmap(recs[1]["segmentation"]).sum() == 4
    rounded = _inst().numpy().to_coco(1, {0: 5, 1: 6, 2: 7}, with_masks=False, decimals=(2, 1))
    assert "segmentation" not in rounded[0] and rounded[1]["score"] == 0.4 and rounded[2]["category_id"] == 6
    with pytest.raises(DataError, match="prediction label 2 outside the dataset's 2 classes"):
        _inst().to_coco(1, [1, 2])


def test_prediction_is_the_same_type_with_image_metadata():
    pred = from_instances(_inst(), ["a", "b", "c"], "x.jpg", 4, 5)
    assert isinstance(pred, Instances) and pred.class_names == ["a", "c", "b"] and pred.bboxes.dtype == np.float32
    kept = pred[pred.scores > 0.5]
    assert isinstance(kept, Prediction) and kept.class_names == ["a", "b"] and kept.img_path == "x.jpg"
    assert pred.select(np.array([2])).class_names == ["b"]
    torch_view = pred.to("cpu")
    assert isinstance(torch_view, Prediction) and isinstance(torch_view.bboxes, torch.Tensor)
