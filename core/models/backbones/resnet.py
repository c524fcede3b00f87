"""ResNet 18/34/50/101/152 with MMDetection's options (frozen_stages, norm_eval, out_indices,
style). Parameter names match torchvision's `resnetNN` (minus `fc`), so torchvision ImageNet
weights load with `load_state_dict(strict=False)` after dropping `fc.*`."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.models.layers import FrozenStages, bn_affine, build_act, build_norm, run_stages


def _norm(cfg: dict, channels: int) -> nn.Module:
    built = build_norm(cfg, channels)
    return built[1] if built else nn.Identity()


def conv_bn(conv: nn.Module, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """bn(conv(x)). While autograd records (training), a BatchNorm2d in eval mode (norm_eval,
    frozen stages) is a fixed per-channel affine map, so it is applied to the conv's weight and
    bias instead of the activations: one pass over the feature map fewer in the forward and in
    the backward, and gradients still reach the conv weight and the BN's affine parameters
    (through the scaled weight). Equal to bn(conv(x)) up to float rounding. Without autograd
    (inference) the BN runs as a module, so unfused outputs stay bit-comparable with
    torchvision's (`fuse_conv_bn` folds once for det test/infer); a training-mode BN too."""
    if not (torch.is_grad_enabled() and isinstance(bn, nn.BatchNorm2d) and not bn.training
            and bn.running_var is not None and type(conv) is nn.Conv2d and conv.padding_mode == "zeros"):
        return bn(conv(x))
    scale, shift = bn_affine(bn, conv.bias)
    return F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), shift, conv.stride, conv.padding, conv.dilation,
                    conv.groups)


def _shortcut(x: torch.Tensor, downsample: nn.Module | None) -> torch.Tensor:
    if downsample is None:
        return x
    if isinstance(downsample, nn.Sequential) and len(downsample) == 2:
        return conv_bn(downsample[0], downsample[1], x)
    return downsample(x)


def _add_relu(out: torch.Tensor, identity: torch.Tensor, relu: nn.Module | None) -> torch.Tensor:
    """relu(out + identity), in place on `out`: `out` is a fresh conv or BatchNorm output that
    autograd does not keep (conv and BN backward save their inputs), so no copy is needed."""
    out += identity
    return relu(out) if relu is not None else out


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 style: str = "pytorch", norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = _norm(norm_cfg, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _norm(norm_cfg, planes)
        self.relu = build_act(act_cfg)
        self.downsample = downsample

    def last_norm(self) -> nn.Module:
        return self.bn2

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        return [("conv1", "bn1"), ("conv2", "bn2")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = _shortcut(x, self.downsample)
        out = self.relu(conv_bn(self.conv1, self.bn1, x))
        out = conv_bn(self.conv2, self.bn2, out)
        return _add_relu(out, identity, self.relu)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 style: str = "pytorch", norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 groups: int = 1, base_width: int = 4, base_channels: int = 64) -> None:
        super().__init__()
        # 'pytorch' puts the stride on the 3x3 conv, 'caffe' on the first 1x1 conv.
        s1, s2 = (1, stride) if style == "pytorch" else (stride, 1)
        # ResNeXt: `groups` paths of base_width channels per 64 planes (MMDetection's rule)
        width = planes if groups == 1 else math.floor(planes * base_width / base_channels) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, s1, bias=False)
        self.bn1 = _norm(norm_cfg, width)
        self.conv2 = nn.Conv2d(width, width, 3, s2, 1, groups=groups, bias=False)
        self.bn2 = _norm(norm_cfg, width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = _norm(norm_cfg, planes * self.expansion)
        self.relu = build_act(act_cfg)
        self.downsample = downsample

    def last_norm(self) -> nn.Module:
        return self.bn3

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        return [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = _shortcut(x, self.downsample)
        out = self.relu(conv_bn(self.conv1, self.bn1, x))
        out = self.relu(conv_bn(self.conv2, self.bn2, out))
        out = conv_bn(self.conv3, self.bn3, out)
        return _add_relu(out, identity, self.relu)


class ResNet(FrozenStages, nn.Module):
    """ResNet backbone returning the feature maps of stages `out_indices` (0 = layer1, C2).

    frozen_stages: -1 trains everything; 0 freezes the stem; k freezes the stem and layer1..k.
    norm_eval: keep BatchNorm layers in eval mode while training (frozen statistics).
    """

    arch_settings = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                     50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
                     152: (Bottleneck, (3, 8, 36, 3))}

    def __init__(self, depth: int, in_channels: int = 3, stem_channels: int | None = None,
                 base_channels: int = 64, num_stages: int = 4, strides: Sequence[int] = (1, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3), style: str = "pytorch", frozen_stages: int = -1,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None, norm_eval: bool = True,
                 zero_init_residual: bool = True) -> None:
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigError(f"{config_path('depth')}: invalid ResNet depth {depth}; one of 18, 34, 50, 101, 152")
        if style not in ("pytorch", "caffe"):
            raise ConfigError(f"{config_path('style')}: '{style}' is not 'pytorch' or 'caffe'")
        if not 1 <= num_stages <= 4 or any(i >= num_stages or i < 0 for i in out_indices):
            raise ConfigError(f"{config_path('out_indices')}: {list(out_indices)} must lie in 0..{num_stages - 1}")
        if not -1 <= frozen_stages <= num_stages:
            raise ConfigError(f"{config_path('frozen_stages')}: {frozen_stages} not in -1..{num_stages}")
        norm_cfg = norm_cfg or {"type": "BN", "requires_grad": True}
        act_cfg = act_cfg or {"type": "ReLU"}
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        block, stage_blocks = self.arch_settings[depth]
        stem_channels = stem_channels or base_channels
        self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, 2, 3, bias=False)
        self.bn1 = _norm(norm_cfg, stem_channels)
        self.relu = build_act(act_cfg)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = stem_channels
        self.res_layers: list[str] = []
        self.out_channels: list[int] = []
        for i in range(num_stages):
            planes = base_channels * 2**i
            stride = strides[i]
            downsample = None
            if stride != 1 or inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
                    _norm(norm_cfg, planes * block.expansion))
            blocks = [self.make_block(block, inplanes, planes, stride, downsample, style, norm_cfg, act_cfg)]
            inplanes = planes * block.expansion
            blocks += [self.make_block(block, inplanes, planes, 1, None, style, norm_cfg, act_cfg)
                       for _ in range(1, stage_blocks[i])]
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.res_layers.append(name)
            self.out_channels.append(inplanes)
        self._init_weights(zero_init_residual)
        self._freeze_stages()

    def make_block(self, block: type, *args: object) -> nn.Module:
        return block(*args)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)) and hasattr(m.last_norm(), "weight"):
                    nn.init.zeros_(m.last_norm().weight)

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        return [("conv1", "bn1")]

    def _frozen_modules(self) -> list[nn.Module]:
        mods: list[nn.Module] = []
        if self.frozen_stages >= 0:
            mods += [self.conv1, self.bn1]
        for i in range(1, self.frozen_stages + 1):
            mods.append(getattr(self, f"layer{i}"))
        return mods

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(conv_bn(self.conv1, self.bn1, x)))
        return run_stages(self, x, self.res_layers, self.out_indices)


class ResNeXt(ResNet):
    """ResNeXt (MMDetection's `ResNeXt`): bottlenecks with a grouped 3x3 conv of `groups` paths,
    `base_width` channels each per 64 planes; names and shapes as MMDetection's, so its X-101
    checkpoints convert key for key."""

    arch_settings = {50: ResNet.arch_settings[50], 101: ResNet.arch_settings[101], 152: ResNet.arch_settings[152]}

    def __init__(self, depth: int, groups: int = 1, base_width: int = 4, **kwargs: object) -> None:
        self.groups, self.base_width = groups, base_width
        self.base_channels = int(kwargs.get("base_channels", 64))  # type: ignore[call-overload]
        super().__init__(depth, **kwargs)  # type: ignore[arg-type]

    def make_block(self, block: type, *args: object) -> nn.Module:
        return block(*args, groups=self.groups, base_width=self.base_width, base_channels=self.base_channels)
