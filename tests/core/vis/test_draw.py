import cv2
import pytest
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


def test_line_width_and_font_scale_follow_the_image():
    from det.core.vis.draw import line_style

    assert line_style(96, 96) == (1, 0.3)
    assert line_style(640, 800) == (2, 0.45)
    thick, font = line_style(1600, 2000)
    assert thick == 5 and font == pytest.approx(1.125)
    big = draw_instances(np.zeros((1600, 1600, 3), np.uint8), [[100, 100, 900, 900]], [0], ["a"], show_labels=False)
    assert 5 <= big[500, 90:110].any(axis=1).sum() <= 7  # thickness 5 (OpenCV's thick lines round up)
    small = draw_instances(np.zeros((96, 96, 3), np.uint8), [[10, 10, 60, 60]], [0], ["a"], show_labels=False)
    assert small[30, 5:15].any(axis=1).sum() == 1  # a 1 px outline


def test_higher_score_label_is_drawn_on_top():
    img = np.zeros((200, 200, 3), np.uint8)
    pal = [(255, 0, 0), (0, 0, 255)]
    # two boxes with the same corner: their tags overlap; the 0.9 one (class 1, blue) must win
    for order in ([0, 1], [1, 0]):
        boxes = np.array([[50, 60, 150, 150], [50, 60, 140, 140]], np.float32)[order]
        labels, scores = np.array([0, 1])[order], np.array([0.2, 0.9])[order]
        out = draw_instances(img, boxes, labels, ["lo", "hi"], scores=scores, palette=pal)
        (_, th), base = cv2.getTextSize("hi 0.90", cv2.FONT_HERSHEY_SIMPLEX, 0.3, 1)
        top = 60 - th - base - 2  # the tags' first row (background only, above the text)
        assert tuple(out[top, 51]) == (255, 0, 0)  # BGR of blue: the tag of the higher score


def test_captions_have_one_height_whatever_the_text():
    from det.core.vis.draw import caption

    img = np.zeros((64, 80, 3), np.uint8)
    assert caption(img, "ground truth").shape == caption(img, "prediction").shape == caption(img, "x").shape
