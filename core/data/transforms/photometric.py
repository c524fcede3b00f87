"""Colour transforms: PhotoMetricDistortion (SSD) and YOLOXHSVRandomAug. Both return new
uint8 images (inputs are never modified in place)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from det.core.data.transforms.base import Transform
from det.core.data.transforms.rng import rng

_IDX = np.arange(256, dtype=np.int32)


class YOLOXHSVRandomAug(Transform):
    """Shift hue, saturation and value by random gains in [-delta, delta] (each channel on or
    off at random). Implemented with lookup tables on the HSV planes."""

    def __init__(self, hue_delta: int = 5, saturation_delta: int = 30, value_delta: int = 30) -> None:
        self.hue_delta = hue_delta
        self.saturation_delta = saturation_delta
        self.value_delta = value_delta

    def transform(self, results: dict) -> dict:
        r = rng()
        gains = r.uniform(-1, 1, 3) * np.array([self.hue_delta, self.saturation_delta, self.value_delta])
        gains = (gains * r.integers(0, 2, 3)).astype(np.int16)
        if not gains.any():
            return results
        hsv = cv2.cvtColor(results["img"], cv2.COLOR_BGR2HSV)
        lut = np.empty((1, 256, 3), np.uint8)
        lut[0, :, 0] = (_IDX + int(gains[0])) % 180
        lut[0, :, 1] = np.clip(_IDX + int(gains[1]), 0, 255)
        lut[0, :, 2] = np.clip(_IDX + int(gains[2]), 0, 255)
        results["img"] = cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2BGR)
        return results


class PhotoMetricDistortion(Transform):
    """Each with probability 0.5: brightness shift, contrast scale (before or after the HSV
    steps), saturation scale, hue shift, channel permutation. Computed in float32, returned as
    uint8 (clipped and rounded)."""

    def __init__(self, brightness_delta: int = 32, contrast_range: Sequence[float] = (0.5, 1.5),
                 saturation_range: Sequence[float] = (0.5, 1.5), hue_delta: int = 18) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_range = tuple(contrast_range)
        self.saturation_range = tuple(saturation_range)
        self.hue_delta = hue_delta

    def transform(self, results: dict) -> dict:
        r = rng()
        img = results["img"].astype(np.float32)
        if r.integers(2):
            img += r.uniform(-self.brightness_delta, self.brightness_delta)
        contrast_first = bool(r.integers(2))
        if contrast_first and r.integers(2):
            img *= r.uniform(*self.contrast_range)
        do_sat, do_hue = bool(r.integers(2)), bool(r.integers(2))
        if do_sat or do_hue:
            hsv = cv2.cvtColor(np.clip(img, 0, 255) / 255.0, cv2.COLOR_BGR2HSV)  # H in [0, 360)
            if do_sat:
                hsv[..., 1] = np.clip(hsv[..., 1] * r.uniform(*self.saturation_range), 0, 1)
            if do_hue:
                hsv[..., 0] = (hsv[..., 0] + r.uniform(-self.hue_delta, self.hue_delta) * 2) % 360
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255.0
        if not contrast_first and r.integers(2):
            img *= r.uniform(*self.contrast_range)
        if r.integers(2):
            img = img[..., r.permutation(3)]
        results["img"] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        return results


class Corrupt(Transform):
    """One of imagecorruptions' corruptions (`corruption`, `severity` 1-5) on the loaded image, for
    the robustness benchmark (`det test --corrupt`). The package works on RGB images: the BGR
    image is flipped to RGB and back (MMDetection's Corrupt hands it the BGR array)."""

    def __init__(self, corruption: str, severity: int = 1) -> None:
        from det.core.evaluation.robustness import GROUPS, load_corrupt

        if corruption not in GROUPS["all"]:
            raise ValueError(f"unknown corruption '{corruption}'; valid: {', '.join(GROUPS['all'])}")
        if not 1 <= int(severity) <= 5:
            raise ValueError(f"severity {severity}: expected 1 to 5")
        self.corruption, self.severity = corruption, int(severity)
        self._corrupt = load_corrupt()

    def transform(self, results: dict) -> dict:
        rgb = np.ascontiguousarray(results["img"][..., ::-1])
        out = self._corrupt(rgb, corruption_name=self.corruption, severity=self.severity)
        results["img"] = np.ascontiguousarray(np.asarray(out, dtype=np.uint8)[..., ::-1])
        return results
