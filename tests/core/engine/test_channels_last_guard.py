"""The channels-last guard: oneDNN's NHWC backward of a strided 1x1 convolution with fewer than
8 input channels corrupts the heap (torch 2.14.1, AVX2), so training keeps NCHW for such models."""
from __future__ import annotations

from torch import nn

from det.core.engine.device import channels_last_is_safe


def test_guard_flags_only_narrow_strided_pointwise_convs():
    assert not channels_last_is_safe(nn.Sequential(nn.Conv2d(3, 4, 7, 2), nn.Conv2d(4, 8, 1, stride=2)))
    assert not channels_last_is_safe(nn.Sequential(nn.Conv2d(12, 12, 1, stride=2, groups=3)))  # 4 per group
    assert channels_last_is_safe(nn.Sequential(nn.Conv2d(4, 8, 1), nn.Conv2d(4, 8, 3, stride=2),
                                               nn.Conv2d(16, 32, 1, stride=2)))

