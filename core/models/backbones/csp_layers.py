"""CSP building blocks shared by the CSPNeXt / CSPDarknet backbones and the CSPNeXt-PAFPN /
YOLOX-PAFPN necks (RTMDet, YOLOX)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.layers import ConvModule, DepthwiseSeparableConvModule

DEFAULT_NORM = {"type": "BN", "momentum": 0.03, "eps": 0.001}
DEFAULT_ACT = {"type": "SiLU"}


class ChannelAttention(nn.Module):
    """x * hardsigmoid(fc(global_avg_pool(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, 1, 0, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return x * self.act(self.fc(pooled))


class CSPNeXtBlock(nn.Module):
    """3x3 conv then a depthwise-separable 5x5 conv, with an optional identity shortcut."""

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5, add_identity: bool = True,
                 use_depthwise: bool = False, kernel_size: int = 5, norm_cfg: dict | None = None,
                 act_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or DEFAULT_ACT
        hidden = int(out_channels * expansion)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.conv1 = conv(in_channels, hidden, 3, stride=1, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = DepthwiseSeparableConvModule(hidden, out_channels, kernel_size, stride=1,
                                                  padding=kernel_size // 2, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class DarknetBottleneck(nn.Module):
    """1x1 conv then 3x3 conv (YOLOX's CSP block), with an optional identity shortcut."""

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5, add_identity: bool = True,
                 use_depthwise: bool = False, norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or DEFAULT_ACT
        hidden = int(out_channels * expansion)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.conv1 = ConvModule(in_channels, hidden, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = conv(hidden, out_channels, 3, stride=1, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross Stage Partial layer: a shortcut 1x1 branch and a 1x1 + blocks branch, concatenated,
    optionally re-weighted by channel attention, then fused by a 1x1 conv. Blocks are CSPNeXt
    blocks (RTMDet) or, with `use_cspnext_block=False`, Darknet bottlenecks (YOLOX)."""

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: float = 0.5, num_blocks: int = 1,
                 add_identity: bool = True, use_depthwise: bool = False, channel_attention: bool = False,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None, use_cspnext_block: bool = True) -> None:
        super().__init__()
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or DEFAULT_ACT
        mid = int(out_channels * expand_ratio)
        self.main_conv = ConvModule(in_channels, mid, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.short_conv = ConvModule(in_channels, mid, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.final_conv = ConvModule(2 * mid, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        block = CSPNeXtBlock if use_cspnext_block else DarknetBottleneck
        self.blocks = nn.Sequential(*[
            block(mid, mid, 1.0, add_identity, use_depthwise, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid) if channel_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        if self.attention is not None:
            out = self.attention(out)
        return self.final_conv(out)


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: concat(x, maxpool_k(x) for k in kernel_sizes) then 1x1 conv.

    For kernel sizes 5, 9, 13 (the default) the three pools are computed SPPF-style as three
    chained 5x5 pools, which gives the same values (max over nested windows) at lower cost.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: Sequence[int] = (5, 9, 13),
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or DEFAULT_ACT
        mid = in_channels // 2
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.conv1 = ConvModule(in_channels, mid, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = ConvModule(mid * (len(self.kernel_sizes) + 1), out_channels, 1, norm_cfg=norm_cfg,
                                act_cfg=act_cfg)
        k0 = self.kernel_sizes[0]
        self.chained = all(k == k0 + i * (k0 - 1) for i, k in enumerate(self.kernel_sizes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        feats = [x]
        if self.chained:
            k = self.kernel_sizes[0]
            y = x
            for _ in self.kernel_sizes:
                y = F.max_pool2d(y, k, 1, k // 2)
                feats.append(y)
        else:
            feats += [F.max_pool2d(x, k, 1, k // 2) for k in self.kernel_sizes]
        return self.conv2(torch.cat(feats, dim=1))
