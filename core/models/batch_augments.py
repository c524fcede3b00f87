"""Batch augmentations run by the data preprocessor while training (`batch_augments`)."""
from __future__ import annotations

import random
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.structures import DetSample


class BatchSyncRandomResize(nn.Module):
    """YOLOX's multi-scale training: the whole batch is bilinearly resized to one size, redrawn
    every `interval` training batches as size_divisor * randint(range / size_divisor) (height,
    width following the batch's aspect ratio) and the same on every rank; boxes and shapes follow."""

    def __init__(self, random_size_range: Sequence[int], interval: int = 10, size_divisor: int = 32) -> None:
        super().__init__()
        if len(random_size_range) != 2 or random_size_range[0] > random_size_range[1]:
            raise ConfigError(f"{config_path('random_size_range')}: expected [low, high], got {random_size_range!r}")
        if interval < 1:
            raise ConfigError(f"{config_path('interval')}: must be >= 1, got {interval}")
        self.range = (round(random_size_range[0] / size_divisor), round(random_size_range[1] / size_divisor))
        self.interval, self.size_divisor = int(interval), int(size_divisor)
        self.input_size: tuple[int, int] | None = None
        self.calls = 0

    def forward(self, x: torch.Tensor, samples: Sequence[DetSample]) -> tuple[torch.Tensor, Sequence[DetSample]]:
        h, w = x.shape[-2:]
        if self.input_size is None:
            self.input_size = (int(h), int(w))
        sy, sx = self.input_size[0] / h, self.input_size[1] / w
        if sx != 1 or sy != 1:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
            for s in samples:
                _rescale_sample(s, sx, sy, self.input_size)
        self.calls += 1
        if self.calls % self.interval == 0:
            self.input_size = self._draw(float(w / h), x.device)
        return x, samples

    def _draw(self, aspect: float, device: torch.device) -> tuple[int, int]:
        size = random.randint(*self.range)
        shape = torch.tensor([self.size_divisor * size, self.size_divisor * int(aspect * size)], device=device)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast(shape, 0)
        return int(shape[0]), int(shape[1])


def _rescale_sample(s: DetSample, sx: float, sy: float, batch_shape: tuple[int, int]) -> None:
    if s.gt.masks is not None and len(s.gt):
        raise ConfigError("model.data_preprocessor.batch_augments: BatchSyncRandomResize does not resize masks")
    s.img_shape = (int(s.img_shape[0] * sy), int(s.img_shape[1] * sx))
    s.pad_shape = (int(s.pad_shape[0] * sy), int(s.pad_shape[1] * sx))
    s.batch_input_shape = batch_shape
    if s.gt.bboxes.numel():
        s.gt.bboxes = s.gt.bboxes * s.gt.bboxes.new_tensor([sx, sy, sx, sy])


BATCH_AUGMENTS = {"BatchSyncRandomResize": BatchSyncRandomResize}
