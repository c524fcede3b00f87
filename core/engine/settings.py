"""The `train` section of a preset, checked once with errors naming the key."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from det.core.config.build import check_keys
from det.core.errors import ConfigError, did_you_mean

TRAIN_KEYS = {
    "max_epochs", "max_iters", "val_interval", "val_begin", "log_interval", "optimizer", "paramwise",
    "clip_grad", "schedulers", "ema", "checkpoint", "amp", "auto_scale_lr", "switch_epoch",
    "find_unused_parameters", "sync_bn", "tensorboard", "seed", "channels_last", "accumulate", "compile", "hooks",
}
CHECKPOINT_KEYS = {"interval", "max_keep", "save_best", "rule", "save_last", "by_epoch"}


def _mapping(value: Any, where: str, keys: set[str] | None = None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value if keys is None else check_keys(value, keys, where=where)


def _positive_int(value: Any, where: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise ConfigError(f"{where}: expected an integer >= {0 if allow_zero else 1}, got {value!r}")
    return value


@dataclass
class TrainSettings:
    max_epochs: int | None
    max_iters: int | None
    val_interval: int = 1
    val_begin: int = 1
    log_interval: int = 50
    optimizer: dict = field(default_factory=dict)
    paramwise: dict = field(default_factory=dict)
    clip_grad: dict | None = None
    schedulers: list = field(default_factory=list)
    ema: dict | None = None
    checkpoint: dict = field(default_factory=dict)
    amp: dict = field(default_factory=dict)
    auto_scale_lr: dict = field(default_factory=dict)
    switch_epoch: int | None = None
    find_unused_parameters: bool = False
    sync_bn: bool = False
    tensorboard: bool = False
    channels_last: str | bool = "auto"
    accumulate: int = 1
    compile: bool = False
    hooks: list = field(default_factory=list)

    @property
    def epoch_based(self) -> bool:
        return self.max_epochs is not None

    @classmethod
    def from_cfg(cls, cfg: dict | None) -> "TrainSettings":
        cfg = _mapping(cfg, "train", TRAIN_KEYS)
        if not cfg:
            raise ConfigError("train: missing section (needs max_epochs or max_iters and an optimizer)")
        max_epochs, max_iters = cfg.get("max_epochs"), cfg.get("max_iters")
        if (max_epochs is None) == (max_iters is None):
            raise ConfigError("train: give exactly one of max_epochs (epoch-based) or max_iters (iteration-based)")
        if cfg.get("seed") is not None and (isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int)):
            raise ConfigError(f"train.seed: expected an integer, got {cfg['seed']!r}")
        if max_epochs is not None:
            _positive_int(max_epochs, "train.max_epochs")
        else:
            _positive_int(max_iters, "train.max_iters")
        if "optimizer" not in cfg:
            raise ConfigError("train.optimizer: required (e.g. {type: SGD, lr: 0.01, momentum: 0.9})")
        _check_optimizer_numbers(cfg["optimizer"])
        ckpt = dict(_mapping(cfg.get("checkpoint"), "train.checkpoint", CHECKPOINT_KEYS))
        by_epoch = ckpt.pop("by_epoch", max_epochs is not None)
        if by_epoch != (max_epochs is not None):
            raise ConfigError(f"train.checkpoint.by_epoch: {by_epoch} but training is "
                              f"{'epoch' if max_epochs is not None else 'iteration'}-based; checkpoints count the "
                              "loop's unit (remove the key)")
        ckpt.setdefault("interval", 1 if max_epochs is not None else max(1, (max_iters or 1)))
        _positive_int(ckpt["interval"], "train.checkpoint.interval")
        if ckpt.get("max_keep") is not None:
            _positive_int(ckpt["max_keep"], "train.checkpoint.max_keep")
        if ckpt.get("rule", "greater") not in ("greater", "less"):
            raise ConfigError(f"train.checkpoint.rule: expected 'greater' or 'less', got {ckpt['rule']!r}")
        amp = cfg.get("amp", False)
        if isinstance(amp, bool):
            amp = {"enabled": amp}
        amp = dict(_mapping(amp, "train.amp", {"enabled", "dtype"}))
        amp["enabled"] = _auto_or_bool(amp.get("enabled", False), "train.amp.enabled")
        if amp.get("dtype", "auto") not in ("auto", "bf16", "fp16", "bfloat16", "float16"):
            raise ConfigError(f"train.amp.dtype: expected auto, bf16 or fp16, got {amp['dtype']!r}")
        scale = cfg.get("auto_scale_lr") or {}
        scale = dict(_mapping(scale, "train.auto_scale_lr", {"enable", "base_batch_size"}))
        if scale.get("base_batch_size") is not None:
            _positive_int(scale["base_batch_size"], "train.auto_scale_lr.base_batch_size")
        clip = cfg.get("clip_grad")
        if clip is not None:
            clip = _mapping(clip, "train.clip_grad", {"max_norm", "norm_type"})
            if "max_norm" not in clip:
                raise ConfigError("train.clip_grad.max_norm: required")
        ema = cfg.get("ema")
        if ema is not None:
            _mapping(ema, "train.ema")
        sw = cfg.get("switch_epoch")
        if sw is not None:
            if isinstance(sw, bool) or not isinstance(sw, int):
                raise ConfigError(f"train.switch_epoch: expected an integer, got {sw!r}")
            if max_epochs is None:
                raise ConfigError("train.switch_epoch: only for epoch-based training (max_epochs)")
            sw = sw + max_epochs if sw < 0 else sw
        return cls(
            max_epochs=max_epochs, max_iters=max_iters,
            val_interval=_positive_int(cfg.get("val_interval", 1 if max_epochs is not None else max_iters), "train.val_interval"),
            val_begin=_positive_int(cfg.get("val_begin", 1), "train.val_begin"),
            log_interval=_positive_int(cfg.get("log_interval", 50), "train.log_interval"),
            optimizer=cfg["optimizer"], paramwise=_mapping(cfg.get("paramwise"), "train.paramwise"),
            clip_grad=clip, schedulers=cfg.get("schedulers") or [], ema=ema, checkpoint=ckpt, amp=amp,
            auto_scale_lr=scale, switch_epoch=sw,
            find_unused_parameters=bool(cfg.get("find_unused_parameters", False)),
            sync_bn=bool(cfg.get("sync_bn", False)), tensorboard=bool(cfg.get("tensorboard", False)),
            channels_last=_auto_or_bool(cfg.get("channels_last", "auto"), "train.channels_last"),
            accumulate=_positive_int(cfg.get("accumulate", 1), "train.accumulate"),
            compile=_bool(cfg.get("compile", False), "train.compile"), hooks=_hook_list(cfg.get("hooks")),
        )

    def build_hooks(self) -> list:
        """The hooks of `train.hooks: [{type: Name, ...}]` (built-in or registered by plugins)."""
        from det.core.config.build import build_list
        from det.core.engine.train_hooks import HOOKS

        return build_list(self.hooks, HOOKS, "train.hooks")

    def use_amp(self, device: torch.device) -> bool:
        """Autocast: `auto` means on where the device has native bf16 (see `native_bf16`); the
        demo's one-stage detectors train 1.6-1.8x faster per step that way on this CPU."""
        enabled = self.amp.get("enabled", False)
        return native_bf16(device) if enabled == "auto" else bool(enabled)

    def use_channels_last(self, device_type: str) -> bool:
        """NHWC weights and activations: `auto` means on CPU, where oneDNN's convolutions are
        faster in that layout (RTMDet-tiny training step 1.18x, Faster R-CNN R18 1.10x here)."""
        return device_type == "cpu" if self.channels_last == "auto" else bool(self.channels_last)


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes in bf16 natively: a CPU with AVX512-BF16 or AMX (read from
    /proc/cpuinfo, so Linux only) or a CUDA GPU of compute capability 8.0 or newer. Elsewhere
    oneDNN emulates bf16 and autocast can be slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _check_optimizer_numbers(opt: Any) -> None:
    """lr > 0 and the usual coefficients >= 0, all finite numbers (`lr=abc` or `lr=nan` would
    otherwise fail inside the optimizer, or train on NaN)."""
    if not isinstance(opt, dict):
        raise ConfigError(f"train.optimizer: expected a mapping like {{type: SGD, lr: 0.01}}, got {opt!r}")
    for key in ("lr", "weight_decay", "momentum", "eps"):
        if key not in opt:
            continue
        value = opt[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
                or (key == "lr" and value == 0):
            raise ConfigError(f"train.optimizer.{key}: expected a finite number {'> 0' if key == 'lr' else '>= 0'}, "
                              f"got {value!r}")


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _hook_list(value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(h, dict) and "type" in h for h in value):
        raise ConfigError("train.hooks: expected a list of {type: HookName, ...} mappings")
    return value


def _auto_or_bool(value: Any, where: str) -> str | bool:
    if value == "auto" or isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected auto, true or false, got {value!r}")


def check_train_section(cfg: dict) -> None:
    """`det config validate`: the train section parses, its optimizer type and schedulers are
    known (no model or data needed)."""
    from det.core.config.build import at_path
    from det.core.engine.optim import check_optimizer_keys, optimizer_class
    from det.core.engine.schedulers import LRSchedule

    s = TrainSettings.from_cfg(cfg.get("train"))
    opt = s.optimizer
    if not isinstance(opt, dict) or "type" not in opt:
        raise ConfigError(f"train.optimizer: expected a mapping with 'type', got {opt!r}")
    with at_path("train", "optimizer"):
        check_optimizer_keys(optimizer_class(opt["type"]), opt["type"], {k: v for k, v in opt.items() if k != "type"})
    if "lr" not in opt:
        raise ConfigError("train.optimizer.lr: required")
    s.build_hooks()
    LRSchedule(s.schedulers, 1000, s.max_epochs, s.max_iters or 1000 * (s.max_epochs or 1), s.epoch_based)
    _check_parts(s)


def _check_parts(s: TrainSettings) -> None:
    """Build the EMA, param-wise groups and clipping settings on a one-layer model, so that
    their keys and values are checked (and read) without the preset's model."""
    from det.core.config.build import signature_keys
    from det.core.engine.ema import EMA_TYPES, ModelEMA
    from det.core.engine.optim import param_groups

    probe = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1))
    if s.ema:
        kind = s.ema.get("type", "ExpMomentumEMA")
        if kind not in EMA_TYPES:
            raise ConfigError(f"train.ema.type: unknown EMA '{kind}'{did_you_mean(kind, EMA_TYPES)}")
        check_keys(s.ema, signature_keys(ModelEMA)[0] - {"model"}, where="train.ema")
        ModelEMA(probe, **s.ema)
    param_groups(probe, 0.1, 0.1, dict(s.paramwise))
    if s.clip_grad:
        for key in ("max_norm", "norm_type"):
            value = s.clip_grad.get(key, 2)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"train.clip_grad.{key}: expected a positive number, got {value!r}")
