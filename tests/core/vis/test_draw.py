import numpy as np
import torch

from det.core.vis import draw_instances, get_palette, make_grid


def test_box_outline_has_palette_colour_and_input_untouched():
    img = np.full((80, 100, 3), 7, np.uint8)
    pal = get_palette(3)
    out = draw_instances(img, torch.tensor([[10.0, 30, 60, 70]]), torch.tensor([2]), ["a", "b", "c"], show_labels=False)
    r, g, b = pal[2]
    assert tuple(out[50, 10]) == (b, g, r)  # left edge, BGR
    assert tuple(out[70, 35]) == (b, g, r)  # bottom edge
    assert tuple(out[50, 35]) == (7, 7, 7)  # inside, no mask
    assert (img == 7).all()


def test_mask_blend_and_track_colours():
    img = np.zeros((40, 40, 3), np.uint8)
    masks = np.zeros((2, 40, 40), bool)
    masks[0, 5:15, 5:15] = True
    pal = [(0, 0, 200), (200, 0, 0)]
    out = draw_instances(img, np.array([[2, 2, 18, 18], [20, 20, 38, 38]]), np.array([0, 0]), ["x"],
                         masks=masks, palette=pal, track_ids=np.array([1, 0]), mask_alpha=0.5, show_labels=False)
    # track id 1 -> palette[1] = RGB (200, 0, 0) -> BGR (0, 0, 200) blended at 0.5 over black
    assert tuple(out[10, 10]) == (0, 0, 100)
    assert tuple(out[30, 20]) == (200, 0, 0)  # track 0 outline, BGR of (0, 0, 200)


def test_labels_drawn_and_grid_shape():
    img = np.zeros((64, 64, 3), np.uint8)
    out = draw_instances(img, [[20, 20, 40, 40]], [0], ["circle"], scores=[0.5])
    assert out[:20].any()  # the tag above the box
    grid = make_grid([out] * 5, cols=3, cell=32, pad=2)
    assert grid.shape == (2 * 34 + 2, 3 * 34 + 2, 3)
