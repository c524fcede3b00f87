"""Class colour palettes. Palettes are lists of RGB tuples (the convention of dataset metadata);
drawing converts to BGR for OpenCV."""
from __future__ import annotations

import colorsys
from collections.abc import Sequence

# Hand-picked, well separated colours for the first classes (RGB).
_BASE = (
    (220, 20, 60), (0, 130, 255), (0, 200, 80), (255, 170, 0), (160, 60, 230),
    (0, 210, 210), (255, 90, 200), (140, 200, 0), (250, 250, 40), (120, 80, 40),
    (0, 80, 160), (255, 120, 90), (70, 70, 255), (0, 140, 110), (200, 0, 120),
    (150, 150, 150),
)


def get_palette(num_classes: int, palette: Sequence[Sequence[int]] | str | None = None) -> list[tuple[int, int, int]]:
    """`num_classes` RGB colours: the given palette (extended if short), or det's default.

    `palette` may be a list of RGB triples, None (default colours) or 'random' (seeded, stable).
    Colours beyond the hand-picked ones are spread over the hue circle by the golden ratio.
    """
    if isinstance(palette, str):
        if palette != "random":
            raise ValueError(f"unknown palette '{palette}' (use a list of RGB triples or 'random')")
        import numpy as np

        rng = np.random.default_rng(42)
        return [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(num_classes)]
    colours = [tuple(int(c) for c in p) for p in (palette or _BASE)]
    i = 0
    while len(colours) < num_classes:
        h = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
        i += 1
    return colours[:num_classes] if num_classes > 0 else colours


def color_for(index: int, palette: Sequence[Sequence[int]]) -> tuple[int, int, int]:
    """RGB colour of class (or track) `index`, cycling through the palette."""
    c = palette[int(index) % len(palette)]
    return int(c[0]), int(c[1]), int(c[2])


def to_bgr(rgb: Sequence[int]) -> tuple[int, int, int]:
    return int(rgb[2]), int(rgb[1]), int(rgb[0])
