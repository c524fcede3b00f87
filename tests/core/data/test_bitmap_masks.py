import numpy as np
import pytest

from det.core.structures import BitmapMasks, polygons_to_bitmap


def test_bitmap_masks_ops_by_hand():
    m = np.zeros((2, 6, 8), np.uint8)
    m[0, 1:3, 2:5] = 1
    bm = BitmapMasks(m, 6, 8)
    np.testing.assert_array_equal(bm.get_bboxes(), [[2, 1, 5, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(bm.areas, [6, 0])
    np.testing.assert_array_equal(bm.flip("horizontal").get_bboxes()[0], [3, 1, 6, 3])
    np.testing.assert_array_equal(bm.flip("vertical").get_bboxes()[0], [2, 3, 5, 5])
    np.testing.assert_array_equal(bm.crop(3, 2, 8, 6).get_bboxes()[0], [0, 0, 2, 1])
    p = bm.pad(10, 12, top=2, left=1)
    assert (p.height, p.width) == (10, 12)
    np.testing.assert_array_equal(p.get_bboxes()[0], [3, 3, 6, 5])
    np.testing.assert_array_equal(bm.resize(12, 16).get_bboxes()[0], [4, 2, 10, 6])
    shift = np.array([[1, 0, 2], [0, 1, 1]], np.float64)
    np.testing.assert_array_equal(bm.warp_affine(shift, 6, 8).get_bboxes()[0], [4, 2, 7, 4])
    assert len(bm[np.array([True, False])]) == 1 and len(BitmapMasks.cat([bm, bm])) == 4
    empty = bm[np.array([False, False])]
    assert len(empty) == 0 and empty.areas.shape == (0,) and empty.get_bboxes().shape == (0, 4)
    assert empty.to_tensor().shape == (0, 6, 8)
    with pytest.raises(ValueError):
        BitmapMasks(m, 5, 8)


def test_from_annotations_polygon_and_rle():
    poly = [[1, 1, 5, 1, 5, 4, 1, 4]]
    bm = BitmapMasks.from_annotations([poly, None], 6, 8)
    np.testing.assert_array_equal(bm.masks[0], polygons_to_bitmap(poly, 6, 8))
    assert bm.masks[1].sum() == 0
