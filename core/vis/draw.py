"""Draw instances (boxes, masks, class names, scores, track ids) on a BGR image with OpenCV.

Used by `det browse`, `det test --show-dir`, `det infer` and `det analyze-results`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from det.core.vis.palette import color_for, get_palette, to_bgr


def _to_numpy(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "to_ndarray"):  # det mask structures
        return x.to_ndarray()
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def draw_instances(
    img_bgr: np.ndarray,
    bboxes: Any,
    labels: Any,
    class_names: Sequence[str] | None,
    scores: Any = None,
    masks: Any = None,
    palette: Sequence[Sequence[int]] | None = None,
    track_ids: Any = None,
    thickness: int | None = None,
    mask_alpha: float = 0.45,
    font_scale: float | None = None,
    show_labels: bool = True,
) -> np.ndarray:
    """Return a copy of `img_bgr` (H, W, 3 uint8) with instances drawn.

    bboxes: (N, 4) xyxy; labels: (N,) class indices; scores: optional (N,); masks: optional
    (N, H, W) bool/uint8 (array, tensor or mask structure); palette: RGB triples per class
    (default det's palette); track_ids: optional (N,) ids, which then pick the colours so one
    track keeps its colour. Box outlines are drawn in the exact palette colour (no blending),
    masks are blended with `mask_alpha` under the outlines. Line width and font scale follow
    the image size unless given (`line_style`); higher scores are drawn last, on top.
    """
    img = np.ascontiguousarray(np.array(img_bgr, dtype=np.uint8, copy=True))
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    boxes = _to_numpy(bboxes)
    boxes = np.zeros((0, 4), np.float32) if boxes is None else boxes.reshape(-1, 4).astype(np.float64)
    n = len(boxes)
    labels_np = np.zeros(n, np.int64) if labels is None else _to_numpy(labels).reshape(-1).astype(np.int64)
    scores_np = None if scores is None else _to_numpy(scores).reshape(-1).astype(np.float64)
    ids_np = None if track_ids is None else _to_numpy(track_ids).reshape(-1).astype(np.int64)
    names = list(class_names or [])
    num_colours = max(len(names), int(labels_np.max()) + 1 if n else 1)
    if palette is not None and not isinstance(palette, str):
        num_colours = max(num_colours, len(palette))
    pal = get_palette(num_colours, palette)
    colour_keys = ids_np if ids_np is not None else labels_np

    masks_np = _to_numpy(masks)
    if masks_np is not None and len(masks_np):
        h, w = img.shape[:2]
        overlay = img.astype(np.float32)
        for i, m in enumerate(masks_np[:n] if n else masks_np):
            m = m.astype(bool)
            if m.shape != (h, w):
                m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            key = colour_keys[i] if i < len(colour_keys) else i
            colour = np.array(to_bgr(color_for(key, pal)), np.float32)
            overlay[m] = overlay[m] * (1 - mask_alpha) + colour * mask_alpha
        img = overlay.round().clip(0, 255).astype(np.uint8)

    auto_thickness, auto_font = line_style(img.shape[0], img.shape[1])
    thickness = auto_thickness if thickness is None else thickness
    font_scale = auto_font if font_scale is None else font_scale
    order = np.argsort(scores_np, kind="stable") if scores_np is not None else range(n)
    for i in order:
        x1, y1, x2, y2 = (int(round(v)) for v in boxes[i])
        colour = to_bgr(color_for(colour_keys[i], pal))
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, thickness, lineType=cv2.LINE_8)
        if not show_labels:
            continue
        label = int(labels_np[i])
        text = names[label] if 0 <= label < len(names) else str(label)
        if ids_np is not None:
            text = f"{text} #{int(ids_np[i])}"
        if scores_np is not None:
            text = f"{text} {scores_np[i]:.2f}"
        _put_label(img, text, x1, y1, colour, font_scale)
    return img


def line_style(height: int, width: int) -> tuple[int, float]:
    """(box line width, font scale) for an image: 1 px and 0.3 at 96 px, 2 px and 0.45 at
    640 px, 5 px and 1.1 at 1600 px (proportional to the shorter side)."""
    side = min(height, width)
    return max(1, int(round(side / 320))), max(0.3, round(0.45 * side / 640, 3))


def caption(img: np.ndarray, text: str) -> np.ndarray:
    """`img` with a white band on top holding `text` (scaled like the labels)."""
    _, font_scale = line_style(*img.shape[:2])
    font, weight = cv2.FONT_HERSHEY_SIMPLEX, max(1, int(round(font_scale * 2)))
    (_, th), base = cv2.getTextSize("Hg", font, font_scale, weight)  # one band height for any text
    band = np.full((th + base + 8, img.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, th + 4), font, font_scale, (0, 0, 0), weight, cv2.LINE_AA)
    return np.concatenate([band, img], axis=0)


def _put_label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], font_scale: float) -> None:
    """A filled tag above the box (inside the image), text in black or white by luminance."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    weight = max(1, int(round(font_scale * 2)))
    (tw, th), base = cv2.getTextSize(text, font, font_scale, weight)
    h, w = img.shape[:2]
    top = y - th - base - 2
    if top < 0:
        top = min(max(y, 0), max(h - th - base - 2, 0))
    left = min(max(x, 0), max(w - tw - 2, 0))
    cv2.rectangle(img, (left, top), (left + tw + 2, top + th + base + 2), colour, -1)
    lum = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    cv2.putText(img, text, (left + 1, top + th + 1), font, font_scale, (0, 0, 0) if lum > 128 else (255, 255, 255), weight,
                cv2.LINE_AA)


def make_grid(images: Sequence[np.ndarray], cols: int | None = None, cell: int = 256, pad: int = 4,
              pad_val: int = 255) -> np.ndarray:
    """Tile images (each letterboxed into `cell` x `cell`) into one overview image."""
    if not images:
        return np.full((cell, cell, 3), pad_val, np.uint8)
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (cell + pad) + pad, cols * (cell + pad) + pad, 3), pad_val, np.uint8)
    for k, im in enumerate(images):
        if im.ndim == 2:
            im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
        s = cell / max(im.shape[:2])
        nh, nw = max(1, int(round(im.shape[0] * s))), max(1, int(round(im.shape[1] * s)))
        small = cv2.resize(im, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        r, c = divmod(k, cols)
        y0 = pad + r * (cell + pad) + (cell - nh) // 2
        x0 = pad + c * (cell + pad) + (cell - nw) // 2
        grid[y0:y0 + nh, x0:x0 + nw] = small
    return grid
