"""SOLOv2's parts by hand: boxes from masks (against BitmapMasks.get_bboxes), centre of mass,
grid-cell assignment with the centre region, shared cells of two instances, and the head's
configuration errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from det.core.errors import ConfigError
from det.core.models.dense_heads.solov2_head import SOLOV2Head
from det.core.models.dense_heads.solov2_targets import center_of_mass, image_targets
from det.core.structures import BitmapMasks, masks_to_boxes


def test_masks_to_boxes_matches_bitmap_masks():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros((6, 20, 30), dtype=torch.bool)
    for i in range(5):
        x1, y1 = torch.randint(0, 25, (1,), generator=g).item(), torch.randint(0, 15, (1,), generator=g).item()
        masks[i, y1:y1 + 1 + i, x1:x1 + 2 + i] = True
    want = BitmapMasks(masks.numpy().astype(np.uint8), 20, 30).get_bboxes()
    assert torch.equal(masks_to_boxes(masks), torch.from_numpy(want))
    assert masks_to_boxes(masks[:0]).shape == (0, 4)


def test_center_of_mass_by_hand():
    m = torch.zeros((1, 5, 7), dtype=torch.bool)
    m[0, 1, 2] = m[0, 3, 6] = True
    rows, cols = center_of_mass(m)
    assert (rows.item(), cols.item()) == (2.0, 4.0)


def _targets(boxes, masks, labels, pos_scale=0.2):
    return image_targets(torch.tensor(boxes, dtype=torch.float32), torch.tensor(labels), masks, (16, 16), 4,
                         [(1, 64)], [8], pos_scale, 3)


def test_centre_region_cells_by_hand():
    masks = torch.zeros((1, 64, 64), dtype=torch.bool)
    masks[0, 16:48, 16:48] = True
    t = _targets([[16, 16, 48, 48]], masks, [2])
    # centre (31.5, 31.5) -> cell 3; region 31.5 -+ 3.2 px -> cells 3..4 on both axes
    lv = t.levels[0]
    assert sorted(lv.cells.tolist()) == [27, 28, 35, 36] and lv.num_pos == 4
    assert lv.labels.reshape(8, 8)[3:5, 3:5].eq(2).all() and int((lv.labels != 3).sum()) == 4
    assert t.masks.shape == (1, 16, 16) and int(t.masks[0].sum()) == 64
    wide = _targets([[16, 16, 48, 48]], masks, [2], pos_scale=1.0).levels[0]
    assert lv.num_pos == 4 and wide.num_pos == 9  # at most the 3 x 3 cells around the centre's cell


def test_shared_cells_keep_both_masks_and_the_later_label():
    masks = torch.zeros((2, 64, 64), dtype=torch.bool)
    masks[0, 16:48, 16:48] = True
    masks[1, 20:44, 20:44] = True
    lv = _targets([[16, 16, 48, 48], [20, 20, 44, 44]], masks, [0, 1]).levels[0]
    assert lv.num_pos == 4 and lv.cells.numel() == 8 and sorted(set(lv.gt_idx.tolist())) == [0, 1]
    assert lv.labels.reshape(8, 8)[3:5, 3:5].eq(1).all()


def test_out_of_range_and_empty_masks_give_no_positives():
    masks = torch.zeros((2, 64, 64), dtype=torch.bool)
    masks[1, 0:2, 0:2] = True
    t = image_targets(torch.tensor([[0, 0, 10, 10], [0, 0, 200, 200]], dtype=torch.float32), torch.tensor([0, 1]),
                      masks, (16, 16), 4, [(1, 64)], [8], 0.2, 3)
    assert t.levels[0].num_pos == 0 and t.levels[0].labels.eq(3).all()


def test_head_configuration_errors():
    feat = {"feat_channels": 32, "start_level": 0, "end_level": 3, "out_channels": 32}
    with pytest.raises(ConfigError, match="num_grids"):
        SOLOV2Head(2, 32, feat, feat_channels=32, num_grids=[8, 6])
    with pytest.raises(ConfigError, match="mask_feature_head.bad"):
        SOLOV2Head(2, 32, {**feat, "bad": 1}, feat_channels=32)
    head = SOLOV2Head(2, 32, feat, feat_channels=32)
    with pytest.raises(ConfigError, match="kernel"):
        head.set_test_cfg({"kernel": "box"})
    with pytest.raises(ConfigError, match="scor_thr"):
        head.set_test_cfg({"scor_thr": 0.2})
