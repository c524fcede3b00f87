"""Turns the loader's uint8 BGR batch into the network input: float, optional BGR->RGB,
(x - mean) / std, padding re-filled with `pad_value` and the batch padded to `pad_size_divisor`;
then, while training, the `batch_augments` (YOLOX's BatchSyncRandomResize).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build_list, config_path
from det.core.errors import ConfigError
from det.core.models.batch_augments import BATCH_AUGMENTS
from det.core.structures import DetSample


class DetDataPreprocessor(nn.Module):
    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 bgr_to_rgb: bool = False, rgb_to_bgr: bool = False, pad_size_divisor: int = 1,
                 pad_value: float = 0.0, batch_augments: list[dict] | None = None) -> None:
        super().__init__()
        if bgr_to_rgb and rgb_to_bgr:
            raise ConfigError(f"{config_path('bgr_to_rgb')}: bgr_to_rgb and rgb_to_bgr cannot both be true")
        if (mean is None) != (std is None):
            raise ConfigError(f"{config_path('std' if std is None else 'mean')}: give both mean and std or neither")
        for key, val in (("mean", mean), ("std", std)):
            if val is not None and len(val) not in (1, 3):
                raise ConfigError(f"{config_path(key)}: expected 1 or 3 values, got {len(val)}")
        self.normalize = mean is not None
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0]).float().view(-1, 1, 1), False)
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0]).float().view(-1, 1, 1), False)
        self.swap_channels = bool(bgr_to_rgb or rgb_to_bgr)
        self.pad_size_divisor = int(pad_size_divisor)
        self.pad_value = float(pad_value)
        self.batch_augments = nn.ModuleList(build_list(batch_augments, BATCH_AUGMENTS, "batch_augments"))

    def forward(self, inputs: torch.Tensor | Sequence[torch.Tensor],
                samples: Sequence[DetSample] | None = None) -> tuple[torch.Tensor, Sequence[DetSample] | None]:
        device = self.mean.device
        if not isinstance(inputs, torch.Tensor):
            inputs = _stack([t.to(device) for t in inputs])
        x = inputs.to(device=device, non_blocking=True).float()
        if self.swap_channels:
            x = x.flip(1)
        if self.normalize:
            x = (x - self.mean) / self.std
        if samples is not None:
            # the loader pads with 0 before normalisation; the reference pads after it
            for i, s in enumerate(samples):
                h, w = _content_shape(s, x.shape[-2:])
                if h < x.shape[-2]:
                    x[i, :, h:, :] = self.pad_value
                if w < x.shape[-1]:
                    x[i, :, :, w:] = self.pad_value
        d = self.pad_size_divisor
        if d > 1:
            h, w = x.shape[-2:]
            ph, pw = math.ceil(h / d) * d - h, math.ceil(w / d) * d - w
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), value=self.pad_value)
        if samples is not None:
            for s in samples:
                s.batch_input_shape = (int(x.shape[-2]), int(x.shape[-1]))
            if self.training:
                for augment in self.batch_augments:
                    x, samples = augment(x, samples)
        return x.contiguous(), samples


def _content_shape(sample: DetSample, batch_hw: Sequence[int]) -> tuple[int, int]:
    shape = sample.pad_shape if sample.pad_shape and sample.pad_shape[0] > 0 else sample.img_shape
    if not shape or shape[0] <= 0:
        return int(batch_hw[0]), int(batch_hw[1])
    return int(shape[0]), int(shape[1])


def _stack(images: Sequence[torch.Tensor]) -> torch.Tensor:
    h = max(int(t.shape[-2]) for t in images)
    w = max(int(t.shape[-1]) for t in images)
    out = images[0].new_zeros((len(images), images[0].shape[0], h, w))
    for i, t in enumerate(images):
        out[i, :, : t.shape[-2], : t.shape[-1]] = t
    return out


PREPROCESSORS = {"DetDataPreprocessor": DetDataPreprocessor}
