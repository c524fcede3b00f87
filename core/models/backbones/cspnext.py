"""CSPNeXt, the RTMDet backbone (arch P5/P6, deepen/widen factors, SPP, channel attention)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.models.backbones.csp_layers import DEFAULT_ACT, DEFAULT_NORM, CSPLayer, SPPBottleneck
from det.core.models.layers import ConvModule, DepthwiseSeparableConvModule, FrozenStages, run_stages


MAX_SCALE_FACTOR = 8.0


class CSPNeXt(FrozenStages, nn.Module):
    """Stem of three 3x3 convs then stages of (stride-2 conv, [SPP], CSPLayer).

    `out_indices` count the stem as 0 (P5 default (2, 3, 4) = strides 8, 16, 32). RTMDet-tiny uses
    deepen_factor=0.167, widen_factor=0.375; RTMDet-s 0.33 / 0.5.
    """

    use_cspnext_block = True  # CSPDarknet (YOLOX) uses Darknet bottlenecks
    # in_channels, out_channels, num_blocks, add_identity, use_spp
    arch_settings = {
        "P5": [[64, 128, 3, True, False], [128, 256, 6, True, False], [256, 512, 6, True, False],
               [512, 1024, 3, False, True]],
        "P6": [[64, 128, 3, True, False], [128, 256, 6, True, False], [256, 512, 6, True, False],
               [512, 768, 3, True, False], [768, 1024, 3, False, True]],
    }

    def __init__(self, arch: str = "P5", deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4), frozen_stages: int = -1, use_depthwise: bool = False,
                 expand_ratio: float = 0.5, spp_kernel_sizes: Sequence[int] = (5, 9, 13),
                 channel_attention: bool = True, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 norm_eval: bool = False) -> None:
        super().__init__()
        if arch not in self.arch_settings:
            raise ConfigError(f"{config_path('arch')}: unknown arch '{arch}'; one of: P5, P6")
        setting = self.arch_settings[arch]
        for key, factor in (("deepen_factor", deepen_factor), ("widen_factor", widen_factor)):
            # MMDetection's largest models use 1.33 / 1.25; far beyond that is a typo that would
            # build a model too large for memory
            if not 0 < factor <= MAX_SCALE_FACTOR:
                raise ConfigError(f"{config_path(key)}: {factor} not in (0, {MAX_SCALE_FACTOR:g}]")
        if any(i < 0 or i > len(setting) for i in out_indices):
            raise ConfigError(f"{config_path('out_indices')}: {list(out_indices)} must lie in 0..{len(setting)}")
        if not -1 <= frozen_stages <= len(setting):
            raise ConfigError(f"{config_path('frozen_stages')}: {frozen_stages} not in -1..{len(setting)}")
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or DEFAULT_ACT
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        stem_out = int(setting[0][0] * widen_factor)
        self.stem = self.build_stem(stem_out, widen_factor, norm_cfg, act_cfg)
        self.layers = ["stem"]
        self.out_channels: list[int] = []
        channels = [stem_out]
        for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(setting):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            n = max(round(blocks * deepen_factor), 1)
            stage: list[nn.Module] = [conv(cin, cout, 3, stride=2, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)]
            if use_spp:
                stage.append(SPPBottleneck(cout, cout, spp_kernel_sizes, norm_cfg=norm_cfg, act_cfg=act_cfg))
            stage.append(CSPLayer(cout, cout, expand_ratio, n, add_identity, use_depthwise,
                                  channel_attention=channel_attention, norm_cfg=norm_cfg, act_cfg=act_cfg,
                                  use_cspnext_block=self.use_cspnext_block))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
            self.layers.append(f"stage{i + 1}")
            channels.append(cout)
        self.out_channels = [channels[i] for i in self.out_indices]
        self._freeze_stages()

    def build_stem(self, out_channels: int, widen_factor: float, norm_cfg: dict, act_cfg: dict) -> nn.Module:
        """Three 3x3 convs, the first with stride 2."""
        mid = int(self.arch_settings["P5"][0][0] * widen_factor // 2)
        return nn.Sequential(
            ConvModule(3, mid, 3, stride=2, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(mid, mid, 3, stride=1, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(mid, out_channels, 3, stride=1, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))

    def _frozen_modules(self) -> list[nn.Module]:
        return [getattr(self, self.layers[i]) for i in range(self.frozen_stages + 1)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return run_stages(self, x, self.layers, self.out_indices)
