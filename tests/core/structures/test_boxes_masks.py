import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from det.core.structures import (
    bitmap_to_rle, box_overlaps, clip_boxes, cxcywh_to_xyxy, flip_boxes, polygons_to_bitmap, polygons_to_rle,
    rescale_boxes, rle_to_bitmap, xywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh,
)


def test_conversions_by_hand():
    b = np.array([[10.0, 20.0, 30.0, 60.0]], dtype=np.float32)
    np.testing.assert_allclose(xyxy_to_xywh(b), [[10, 20, 20, 40]])
    np.testing.assert_allclose(xyxy_to_cxcywh(b), [[20, 40, 20, 40]])
    np.testing.assert_allclose(xywh_to_xyxy(np.array([[10.0, 20, 20, 40]])), b)
    np.testing.assert_allclose(cxcywh_to_xyxy(np.array([[20.0, 40, 20, 40]])), b)
    assert isinstance(xyxy_to_xywh(torch.tensor(b)), torch.Tensor)


def test_iou_clip_flip_rescale_by_hand():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20, 20, 30, 30]])
    torch.testing.assert_close(box_overlaps(a, b), torch.tensor([[50 / 150, 0.0]]))
    torch.testing.assert_close(clip_boxes(torch.tensor([[-5.0, -1, 50, 8]]), 6, 40), torch.tensor([[0.0, 0, 40, 6]]))
    torch.testing.assert_close(flip_boxes(a + 1, 20, 30, "horizontal"), torch.tensor([[19.0, 1, 29, 11]]))
    torch.testing.assert_close(flip_boxes(a + 1, 20, 30, "vertical"), torch.tensor([[1.0, 9, 11, 19]]))
    torch.testing.assert_close(rescale_boxes(a, (2.0, 0.5)), torch.tensor([[0.0, 0, 20, 5]]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 90), st.floats(0, 90), st.floats(1, 10), st.floats(1, 10)), min_size=1, max_size=8),
       st.sampled_from(["horizontal", "vertical", "diagonal"]))
def test_double_flip_is_identity(raw, direction):
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], dtype=np.float64)
    twice = flip_boxes(flip_boxes(boxes, 100, 100, direction), 100, 100, direction)
    np.testing.assert_allclose(twice, boxes, atol=1e-9)


def test_mask_round_trips():
    poly = [[2.0, 2.0, 12.0, 2.0, 12.0, 8.0, 2.0, 8.0]]
    bitmap = polygons_to_bitmap(poly, 16, 20)
    assert bitmap.shape == (16, 20) and bitmap.dtype == np.uint8
    ys, xs = np.nonzero(bitmap)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (2, 11, 2, 7)
    rle = polygons_to_rle(poly, 16, 20)
    assert isinstance(rle["counts"], str) and rle["size"] == [16, 20]
    np.testing.assert_array_equal(rle_to_bitmap(bitmap_to_rle(bitmap)), bitmap)
    np.testing.assert_array_equal(rle_to_bitmap(rle), bitmap)
