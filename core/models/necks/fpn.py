"""Feature Pyramid Network and Path Aggregation FPN (MMDetection semantics)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.models.layers import ConvModule

EXTRA_MODES = ("on_input", "on_lateral", "on_output")


class FPN(nn.Module):
    """Lateral 1x1 convs, top-down nearest upsampling and 3x3 output convs over the backbone
    levels `start_level..end_level`, plus `num_outs - levels` extra levels: max-pooling when
    `add_extra_convs` is False, otherwise stride-2 3x3 convs on the last input ('on_input'),
    lateral ('on_lateral') or output ('on_output'); `True` means 'on_input'.
    `relu_before_extra_convs` applies ReLU before every extra conv after the first.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int, start_level: int = 0,
                 end_level: int = -1, add_extra_convs: bool | str = False, relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 upsample_cfg: dict | None = None) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg or {"mode": "nearest"})
        if end_level in (-1, self.num_ins - 1):
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ConfigError(f"{config_path('num_outs')}: {num_outs} is fewer than the "
                                  f"{self.num_ins - start_level} input levels used")
        else:
            self.backbone_end_level = end_level + 1
            if not (end_level < self.num_ins and num_outs == end_level - start_level + 1):
                raise ConfigError(f"{config_path('end_level')}: {end_level} does not match num_outs {num_outs}")
        if not 0 <= start_level < self.num_ins:
            raise ConfigError(f"{config_path('start_level')}: {start_level} not in 0..{self.num_ins - 1}")
        self.start_level = start_level
        if add_extra_convs is True:
            add_extra_convs = "on_input"
        if add_extra_convs not in (False, *EXTRA_MODES):
            raise ConfigError(f"{config_path('add_extra_convs')}: '{add_extra_convs}' is not false, true or one of "
                              f"{', '.join(EXTRA_MODES)}")
        self.add_extra_convs = add_extra_convs
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(self.in_channels[i], out_channels, 1,
                                                 norm_cfg=None if no_norm_on_lateral else norm_cfg, act_cfg=act_cfg))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                                             act_cfg=act_cfg))
        extra_levels = num_outs - self.backbone_end_level + start_level
        if add_extra_convs and extra_levels >= 1:
            for i in range(extra_levels):
                cin = self.in_channels[self.backbone_end_level - 1] if i == 0 and add_extra_convs == "on_input" \
                    else out_channels
                self.fpn_convs.append(ConvModule(cin, out_channels, 3, stride=2, padding=1, norm_cfg=norm_cfg,
                                                 act_cfg=act_cfg))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _top_down(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(inputs) != self.num_ins:
            raise ValueError(f"FPN expects {self.num_ins} inputs, got {len(inputs)}")
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            # `up` is a fresh tensor that interpolate's backward does not keep: add into it
            laterals[i - 1] = up.add_(laterals[i - 1]) if up.shape == laterals[i - 1].shape \
                else laterals[i - 1] + up
        return laterals

    def _extra(self, outs: list[torch.Tensor], inputs: Sequence[torch.Tensor], laterals: list[torch.Tensor],
               used: int) -> list[torch.Tensor]:
        if self.num_outs <= len(outs):
            return outs
        if not self.add_extra_convs:
            for _ in range(self.num_outs - used):
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            return outs
        if self.add_extra_convs == "on_input":
            source = inputs[self.backbone_end_level - 1]
        elif self.add_extra_convs == "on_lateral":
            source = laterals[-1]
        else:
            source = outs[-1]
        outs.append(self.fpn_convs[used](source))
        for i in range(used + 1, self.num_outs):
            x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
            outs.append(self.fpn_convs[i](x))
        return outs

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        laterals = self._top_down(inputs)
        used = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        return tuple(self._extra(outs, inputs, laterals, used))


class PAFPN(FPN):
    """FPN followed by a bottom-up path: stride-2 3x3 convs add each level into the next one,
    then 3x3 convs produce the outputs (PANet)."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int, start_level: int = 0,
                 end_level: int = -1, add_extra_convs: bool | str = False, relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 upsample_cfg: dict | None = None) -> None:
        super().__init__(in_channels, out_channels, num_outs, start_level, end_level, add_extra_convs,
                         relu_before_extra_convs, no_norm_on_lateral, norm_cfg, act_cfg, upsample_cfg)
        self.downsample_convs = nn.ModuleList()
        self.pafpn_convs = nn.ModuleList()
        for _ in range(self.start_level + 1, self.backbone_end_level):
            self.downsample_convs.append(ConvModule(out_channels, out_channels, 3, stride=2, padding=1,
                                                    norm_cfg=norm_cfg, act_cfg=act_cfg))
            self.pafpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                                               act_cfg=act_cfg))
        for m in list(self.downsample_convs.modules()) + list(self.pafpn_convs.modules()):
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        laterals = self._top_down(inputs)
        used = len(laterals)
        inter = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        for i in range(used - 1):
            inter[i + 1] = inter[i + 1] + self.downsample_convs[i](inter[i])
        outs = [inter[0]] + [self.pafpn_convs[i - 1](inter[i]) for i in range(1, used)]
        return tuple(self._extra(outs, inputs, laterals, used))
