"""Building blocks shared by backbones, necks and heads: conv + norm + activation modules built
from MMDetection-style `norm_cfg` / `act_cfg` dicts, a learnable scale, and init helpers."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from det.core.config.build import check_keys, config_path
from det.core.errors import ConfigError

NORM_TYPES = ("BN", "SyncBN", "GN", "LN")
ACT_TYPES = ("ReLU", "SiLU", "Swish", "LeakyReLU", "GELU", "HSigmoid", "HSwish", "Sigmoid")


def build_norm(cfg: dict | None, channels: int) -> tuple[str, nn.Module] | None:
    """(attribute name, module) for a norm config: BN/SyncBN -> 'bn', GN -> 'gn', LN -> 'ln'.

    `SyncBN` is built as BatchNorm2d; the trainer converts BatchNorm layers to
    nn.SyncBatchNorm when it runs distributed with SyncBN enabled.
    """
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop("type", "BN")
    requires_grad = cfg.pop("requires_grad", True)
    if kind in ("BN", "SyncBN", "BN2d"):
        allowed = {"momentum", "eps", "affine", "track_running_stats"}
        name, module_fn = "bn", lambda **kw: nn.BatchNorm2d(channels, **kw)
    elif kind == "GN":
        groups = cfg.pop("num_groups", 32)
        allowed = {"eps", "affine"}
        name, module_fn = "gn", lambda **kw: nn.GroupNorm(groups, channels, **kw)
    elif kind == "LN":
        allowed = {"eps"}
        name, module_fn = "ln", lambda **kw: nn.GroupNorm(1, channels, **kw)
    else:
        raise ConfigError(f"{config_path('norm_cfg.type')}: unknown norm '{kind}'; one of: {', '.join(NORM_TYPES)}")
    check_keys(cfg, allowed, "norm_cfg", f"{kind} norm")
    module = module_fn(**cfg)
    for p in module.parameters():
        p.requires_grad = requires_grad
    return name, module


class Swish(nn.Module):
    """x * sigmoid(x): the same function as SiLU, computed as MMCV's `Swish` computes it. Fused
    SiLU rounds differently in the last bit, and that difference grows through deep YOLOX models
    enough to break output parity with MMDetection's checkpoints."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def build_act(cfg: dict | None) -> nn.Module | None:
    """Activation module for an `act_cfg` ({type: ReLU|SiLU|Swish|LeakyReLU|...})."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop("type", "ReLU")
    inplace = cfg.pop("inplace", True)
    if kind == "ReLU":
        return nn.ReLU(inplace=inplace)
    if kind == "SiLU":
        return nn.SiLU(inplace=inplace)
    if kind == "Swish":
        return Swish()
    if kind == "LeakyReLU":
        return nn.LeakyReLU(cfg.pop("negative_slope", 0.01), inplace=inplace)
    if kind == "GELU":
        return nn.GELU()
    if kind == "HSigmoid":
        return nn.Hardsigmoid(inplace=inplace)
    if kind == "HSwish":
        return nn.Hardswish(inplace=inplace)
    if kind == "Sigmoid":
        return nn.Sigmoid()
    raise ConfigError(f"{config_path('act_cfg.type')}: unknown activation '{kind}'; one of: {', '.join(ACT_TYPES)}")


class ConvModule(nn.Module):
    """Conv2d -> norm -> activation. Parameter names follow MMCV (`conv`, `bn`/`gn`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool | str = "auto",
                 norm_cfg: dict | None = None, act_cfg: dict | None = {"type": "ReLU"}) -> None:
        super().__init__()
        norm = build_norm(norm_cfg, out_channels)
        if bias == "auto":
            bias = norm is None
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                              bias=bool(bias))
        self.norm_name = None
        if norm is not None:
            self.norm_name = norm[0]
            self.add_module(norm[0], norm[1])
        self.activate = build_act(act_cfg)
        nonlinearity = "leaky_relu" if isinstance(self.activate, nn.LeakyReLU) else "relu"
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity=nonlinearity)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    @property
    def norm(self) -> nn.Module | None:
        return getattr(self, self.norm_name) if self.norm_name else None

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        """(conv, norm) attribute pairs where the norm directly follows the conv (fuse_conv_bn)."""
        return [("conv", self.norm_name)] if self.norm_name else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_name:
            x = getattr(self, self.norm_name)(x)
        if self.activate is not None:
            x = self.activate(x)
        return x


class DepthwiseSeparableConvModule(nn.Module):
    """Depthwise k x k ConvModule followed by a pointwise 1 x 1 ConvModule."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, norm_cfg: dict | None = None,
                 act_cfg: dict | None = {"type": "ReLU"}) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(in_channels, in_channels, kernel_size, stride, padding, dilation,
                                         groups=in_channels, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.pointwise_conv = ConvModule(in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class Scale(nn.Module):
    """A learnable scalar multiplier (one per FPN level in FCOS)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def bias_init_with_prob(prior_prob: float) -> float:
    """Bias so that sigmoid(bias) == prior_prob (focal-loss classifier init)."""
    return float(-math.log((1 - prior_prob) / prior_prob))


def normal_init(module: nn.Module, std: float = 0.01, bias: float = 0.0) -> None:
    nn.init.normal_(module.weight, 0.0, std)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


def freeze(modules: Iterable[nn.Module]) -> None:
    """Put modules in eval mode and stop their parameters' gradients (frozen backbone stages)."""
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad = False


def set_norm_eval(module: nn.Module) -> None:
    """Put every BatchNorm layer under `module` in eval mode (frozen running statistics)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def run_stages(module: nn.Module, x: torch.Tensor, names: Sequence[str], out_indices: Sequence[int]) -> tuple:
    """`x` through the submodules `names` in turn; the outputs of those at `out_indices`."""
    outs = []
    for i, name in enumerate(names):
        x = getattr(module, name)(x)
        if i in out_indices:
            outs.append(x)
    return tuple(outs)


class FrozenStages:
    """Backbone mixin: `train()` keeps `_frozen_modules()` frozen and, with `norm_eval`,
    BatchNorm statistics fixed."""

    norm_eval: bool = False

    def _frozen_modules(self) -> list[nn.Module]:
        return []

    def _freeze_stages(self) -> None:
        freeze(self._frozen_modules())

    def train(self, mode: bool = True) -> "FrozenStages":
        super().train(mode)  # type: ignore[misc]
        self._freeze_stages()
        if mode and self.norm_eval:
            set_norm_eval(self)  # type: ignore[arg-type]
        return self


def bn_affine(bn: nn.Module, conv_bias: torch.Tensor | None = None,
              dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) per channel with bn(conv(x)) == conv_nobias(x) * scale + shift for an
    eval-mode BatchNorm (running statistics): scale = gamma / sqrt(var + eps), shift = beta -
    mean * scale (+ conv_bias * scale). Differentiable in gamma, beta and the conv bias; `dtype`
    computes in another precision (float64 for `fold_conv_bn`)."""
    def cast(t: torch.Tensor) -> torch.Tensor:
        return t if dtype is None else t.to(dtype)

    scale = torch.rsqrt(cast(bn.running_var) + bn.eps)
    if bn.weight is not None:
        scale = cast(bn.weight) * scale
    shift = -cast(bn.running_mean) * scale
    if bn.bias is not None:
        shift = shift + cast(bn.bias)
    if conv_bias is not None:
        shift = shift + cast(conv_bias) * scale
    return scale, shift


def fold_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """A new Conv2d computing `bn(conv(x))` for an eval-mode BatchNorm2d (running statistics):
    the weight scaled and the bias shifted per output channel by `bn_affine` (in float64)."""
    with torch.no_grad():
        scale, shift = bn_affine(bn, conv.bias, dtype=torch.float64)
    weight = conv.weight.detach()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_((weight.double() * scale.view(-1, 1, 1, 1)).to(weight.dtype))
        fused.bias.copy_(shift.to(weight.dtype))
    fused.weight.requires_grad_(conv.weight.requires_grad)
    fused.bias.requires_grad_(conv.weight.requires_grad)
    return fused


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d) and not bn.training
            and bn.running_mean is not None and bn.num_features == conv.out_channels)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d into that conv, for
    inference (`det test`, `det infer`, the benchmarks): the BN is replaced by nn.Identity, so
    each conv+BN pair costs one convolution. Outputs match the unfused model to float rounding
    (tests/core/models/test_fuse_conv_bn.py checks 1e-4). Pairs are the `conv_bn_pairs()` that
    modules declare (ConvModule, ResNet blocks and stem) and Conv2d -> BatchNorm2d neighbours in
    nn.Sequential. A conv shared by several modules (RTMDet's head shares convs across levels,
    each with its own BN) gets one fused copy per module. Modifies `model` in place (the
    state_dict loses the folded BN entries) and returns it; a training-mode model is refused."""
    from det.core.errors import DetError

    if model.training:
        raise DetError("fuse_conv_bn: the model is in training mode (BatchNorm uses batch statistics); "
                       "call model.eval() first")
    for module in list(model.modules()):
        pairs = module.conv_bn_pairs() if hasattr(module, "conv_bn_pairs") else []
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if _foldable(conv, bn):
                setattr(module, conv_name, fold_conv_bn(conv, bn))
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if _foldable(conv, bn):
                    module._modules[a] = fold_conv_bn(conv, bn)
                    module._modules[b] = nn.Identity()
    return model
