"""CSPNeXt-PAFPN, the RTMDet neck: top-down and bottom-up paths fused by CSP layers."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.backbones.csp_layers import DEFAULT_ACT, DEFAULT_NORM, CSPLayer
from det.core.models.layers import ConvModule, DepthwiseSeparableConvModule


class CSPNeXtPAFPN(nn.Module):
    """1x1 reduce + nearest 2x upsample + CSPLayer top-down, stride-2 conv + CSPLayer bottom-up,
    then a 3x3 conv per level to `out_channels`."""

    use_cspnext_block = True
    out_kernel_size = 3

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_csp_blocks: int = 3,
                 use_depthwise: bool = False, expand_ratio: float = 0.5, upsample_cfg: dict | None = None,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or DEFAULT_ACT
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.upsample_cfg = dict(upsample_cfg or {"scale_factor": 2, "mode": "nearest"})
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        n = len(self.in_channels)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(n - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1, norm_cfg=norm_cfg,
                                                 act_cfg=act_cfg))
            self.top_down_blocks.append(CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1], expand_ratio,
                                                 num_csp_blocks, False, use_depthwise, norm_cfg=norm_cfg,
                                                 act_cfg=act_cfg, use_cspnext_block=self.use_cspnext_block))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(n - 1):
            self.downsamples.append(conv(in_channels[idx], in_channels[idx], 3, stride=2, padding=1,
                                         norm_cfg=norm_cfg, act_cfg=act_cfg))
            self.bottom_up_blocks.append(CSPLayer(in_channels[idx] * 2, in_channels[idx + 1], expand_ratio,
                                                  num_csp_blocks, False, use_depthwise, norm_cfg=norm_cfg,
                                                  act_cfg=act_cfg, use_cspnext_block=self.use_cspnext_block))
        k = self.out_kernel_size
        out_conv = conv if k > 1 else ConvModule
        self.out_convs = nn.ModuleList(
            out_conv(c, out_channels, k, padding=k // 2, norm_cfg=norm_cfg, act_cfg=act_cfg) for c in in_channels)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        n = len(self.in_channels)
        if len(inputs) != n:
            raise ValueError(f"CSPNeXtPAFPN expects {n} inputs, got {len(inputs)}")
        inner = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            j = n - 1 - idx
            high = self.reduce_layers[j](inner[0])
            inner[0] = high
            up = F.interpolate(high, **self.upsample_cfg)
            inner.insert(0, self.top_down_blocks[j](torch.cat([up, inputs[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(n - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner[idx + 1]], 1)))
        return tuple(conv(o) for conv, o in zip(self.out_convs, outs))
