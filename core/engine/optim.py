"""Optimizers from the preset's `train.optimizer` and `train.paramwise`.

    optimizer: {type: AdamW, lr: 0.004, weight_decay: 0.05, betas: [0.9, 0.999]}
    paramwise: {norm_decay_mult: 0.0, bias_decay_mult: 0.0, bias_lr_mult: 1.0,
                bypass_duplicate: true, custom_keys: {backbone: {lr_mult: 0.1, decay_mult: 1.0}}}

Norm layers' weights and biases get `norm_decay_mult`; other biases get `bias_decay_mult` and
`bias_lr_mult`; a parameter whose name contains a `custom_keys` key (longest key first) gets
that key's `lr_mult`/`decay_mult` instead. Parameters with the same options share a group.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from det.core.config.build import at_path, check_keys, check_signature_keys, config_path
from det.core.errors import ConfigError, did_you_mean

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD,
    "AdamW": torch.optim.AdamW,
    "Adam": torch.optim.Adam,
}
PARAMWISE_KEYS = {"norm_decay_mult", "bias_decay_mult", "bias_lr_mult", "bypass_duplicate", "custom_keys"}
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def param_groups(model: nn.Module, lr: float, weight_decay: float, paramwise: dict | None) -> list[dict[str, Any]]:
    """Group trainable parameters by (lr, weight_decay) after applying the param-wise rules."""
    pw = dict(paramwise or {})
    check_keys(pw, PARAMWISE_KEYS, where="train.paramwise")
    custom = pw.get("custom_keys") or {}
    if not isinstance(custom, dict):
        raise ConfigError("train.paramwise.custom_keys: expected a mapping of name -> {lr_mult, decay_mult}")
    for key, opts in custom.items():
        check_keys(opts, {"lr_mult", "decay_mult"}, where=f"train.paramwise.custom_keys.{key}")
        for mult in ("lr_mult", "decay_mult"):
            value = (opts or {}).get(mult, 1.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ConfigError(f"train.paramwise.custom_keys.{key}.{mult}: expected a finite number >= 0, got {value!r}")
    keys = sorted(sorted(custom), key=len, reverse=True)
    seen: set[int] = set()
    groups: dict[tuple[float, float], list[torch.Tensor]] = {}
    names: dict[tuple[float, float], list[str]] = {}
    for mod_name, module in model.named_modules():
        is_norm = isinstance(module, NORM_TYPES)
        for p_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if id(param) in seen:
                if pw.get("bypass_duplicate", False):
                    continue
                raise ConfigError(f"train.paramwise: parameter {mod_name}.{p_name} is shared between modules; "
                                  "set train.paramwise.bypass_duplicate=true")
            seen.add(id(param))
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            lr_mult, decay_mult = 1.0, 1.0
            match = next((k for k in keys if k in full), None)
            if match is not None:
                lr_mult = float(custom[match].get("lr_mult", 1.0))
                decay_mult = float(custom[match].get("decay_mult", 1.0))
            elif is_norm:
                decay_mult = float(pw.get("norm_decay_mult", 1.0))
            elif p_name == "bias":
                decay_mult = float(pw.get("bias_decay_mult", 1.0))
                lr_mult = float(pw.get("bias_lr_mult", 1.0))
            key = (lr * lr_mult, weight_decay * decay_mult)
            groups.setdefault(key, []).append(param)
            names.setdefault(key, []).append(full)
    return [{"params": params, "lr": k[0], "weight_decay": k[1], "initial_lr": k[0], "param_names": names[k]}
            for k, params in groups.items()]


def build_optimizer(model: nn.Module, cfg: dict, paramwise: dict | None = None, lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """`cfg` is `train.optimizer`; `lr_scale` comes from auto_scale_lr."""
    with at_path("train", "optimizer"):
        if not isinstance(cfg, dict) or "type" not in cfg:
            raise ConfigError(f"{config_path()}: expected a mapping with 'type' (one of {', '.join(OPTIMIZERS)})")
        name = cfg["type"]
        factory = optimizer_class(name)
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        check_optimizer_keys(factory, name, kwargs)
        if "lr" not in kwargs:
            raise ConfigError(f"{config_path('lr')}: required")
        lr = float(kwargs.pop("lr")) * lr_scale
        wd = float(kwargs.pop("weight_decay", 0.0))
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        groups = param_groups(model, lr, wd, paramwise)
        try:
            return factory([{k: v for k, v in g.items() if k != "param_names"} for g in groups],
                                    lr=lr, weight_decay=wd, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{config_path()}: {exc}") from None


def optimizer_class(name: Any) -> Callable[..., torch.optim.Optimizer]:
    """det's table first (plugins register there), then any `torch.optim` optimizer by name."""
    if name in OPTIMIZERS:
        return OPTIMIZERS[name]
    found = getattr(torch.optim, str(name), None)
    if isinstance(found, type) and issubclass(found, torch.optim.Optimizer):
        return found
    known = set(OPTIMIZERS) | {n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)
                               and issubclass(getattr(torch.optim, n), torch.optim.Optimizer) and n != "Optimizer"}
    raise ConfigError(f"{config_path('type')}: unknown optimizer '{name}'{did_you_mean(str(name), known)}")


def check_optimizer_keys(factory: Callable, name: str, kwargs: dict) -> None:
    """Every key of train.optimizer must be a parameter of the optimizer's constructor."""
    check_signature_keys(factory, kwargs, name, exclude={"params"})
