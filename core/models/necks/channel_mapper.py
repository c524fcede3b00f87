"""ChannelMapper (DETR family): one conv per input level to a common width, plus optional extra
stride-2 3x3 convs on the last input for more levels (MMDetection's parameter names)."""
from __future__ import annotations

import torch
from torch import nn

from det.core.models.layers import ConvModule


class ChannelMapper(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int, kernel_size: int = 3, conv_cfg: dict | None = None,
                 norm_cfg: dict | None = None, act_cfg: dict | None = {"type": "ReLU"}, bias: bool | str = "auto",
                 num_outs: int | None = None) -> None:
        super().__init__()
        del conv_cfg  # MMDetection configs pass conv_cfg=None: a plain Conv2d
        num_outs = num_outs or len(in_channels)
        self.convs = nn.ModuleList(
            ConvModule(c, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=bias, norm_cfg=norm_cfg,
                       act_cfg=act_cfg) for c in in_channels)
        extra = [ConvModule(in_channels[-1] if i == 0 else out_channels, out_channels, 3, stride=2, padding=1,
                            bias=bias, norm_cfg=norm_cfg, act_cfg=act_cfg) for i in range(num_outs - len(in_channels))]
        self.extra_convs = nn.ModuleList(extra) if extra else None

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        outs = [conv(x) for conv, x in zip(self.convs, inputs)]
        if self.extra_convs is not None:
            outs.append(self.extra_convs[0](inputs[-1]))
            for conv in self.extra_convs[1:]:
                outs.append(conv(outs[-1]))
        return tuple(outs)
