"""CSPDarknet, the YOLOX backbone: a Focus stem, then stages of (stride-2 conv, [SPP], CSPLayer of
Darknet bottlenecks). MMDetection's module names, so its checkpoints map key for key."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.models.backbones.cspnext import CSPNeXt
from det.core.models.layers import ConvModule

SWISH = {"type": "Swish"}


class Focus(nn.Module):
    """Space-to-depth: the four pixel phases of each 2x2 cell stacked on channels, then a conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        self.conv = ConvModule(in_channels * 4, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # phase order top-left, bottom-left, top-right, bottom-right (the trained weights depend on it)
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


def kaiming_uniform_init(module: nn.Module) -> None:
    """MMDetection's YOLOX init: every Conv2d with PyTorch's default (Kaiming uniform, a=sqrt(5))
    weights and zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.reset_parameters()
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class CSPDarknet(CSPNeXt):
    """YOLOX-s: deepen_factor 0.33, widen_factor 0.5; tiny 0.33 / 0.375; nano 0.33 / 0.25 with
    depthwise convs. `spp_kernal_sizes` keeps MMDetection's spelling."""

    use_cspnext_block = False
    # CSPNeXt's stages, with 9 blocks where CSPNeXt has 6 (MMDetection's CSPDarknet table)
    arch_settings = {arch: [[c_in, c_out, 9 if n == 6 else n, identity, spp] for c_in, c_out, n, identity, spp in rows]
                     for arch, rows in CSPNeXt.arch_settings.items()}

    def __init__(self, arch: str = "P5", deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4), frozen_stages: int = -1, use_depthwise: bool = False,
                 spp_kernal_sizes: Sequence[int] = (5, 9, 13), norm_cfg: dict | None = None,
                 act_cfg: dict | None = None, norm_eval: bool = False) -> None:
        super().__init__(arch, deepen_factor, widen_factor, out_indices, frozen_stages, use_depthwise,
                         expand_ratio=0.5, spp_kernel_sizes=spp_kernal_sizes, channel_attention=False,
                         norm_cfg=norm_cfg, act_cfg=act_cfg or SWISH, norm_eval=norm_eval)
        kaiming_uniform_init(self)

    def build_stem(self, out_channels: int, widen_factor: float, norm_cfg: dict, act_cfg: dict) -> nn.Module:
        return Focus(3, out_channels, 3, norm_cfg=norm_cfg, act_cfg=act_cfg)
