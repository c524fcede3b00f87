"""One training iteration: autocast forward, loss parsing, backward with gradient accumulation,
AMP loss scaling, gradient clipping, the optimizer step and the EMA update."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from det.core import dist
from det.core.errors import ConfigError, DetError

AMP_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def split_batch(batch: Any) -> tuple[torch.Tensor, list]:
    if isinstance(batch, dict):
        return batch["inputs"], batch["samples"]
    inputs, samples = batch
    return inputs, samples


def move_samples(samples: list, device: torch.device) -> list:
    """Ground truth to the device (DetSample.gt are Instances)."""
    if device.type == "cpu":
        return samples
    for s in samples:
        if getattr(s, "gt", None) is not None and hasattr(s.gt, "to"):
            s.gt = s.gt.to(device)
    return samples


def parse_losses(losses: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum every entry whose key contains 'loss' (lists are summed first), MMDetection's rule: the
    auxiliary terms of transformer heads (`d0.loss_cls`, `enc_loss_*`, `dn_loss_*`) count."""
    logged: dict[str, torch.Tensor] = {}
    for key, value in losses.items():
        if isinstance(value, torch.Tensor):
            logged[key] = value.mean() if value.dim() else value
        elif isinstance(value, (list, tuple)):
            logged[key] = sum(v.mean() for v in value)
        else:
            logged[key] = torch.as_tensor(float(value))
    parts = [v for k, v in logged.items() if "loss" in k]
    if not parts:
        raise DetError(f"model.loss returned no 'loss*' entries (got {sorted(losses)})")
    return sum(parts), logged


def amp_dtype_for(settings: Any, device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The autocast dtype of `train.amp` (None: fp32); `amp` from the CLI wins."""
    on = settings.use_amp(device) if amp is None else amp
    if not on:
        return None
    name = settings.amp.get("dtype", "auto")
    if name == "auto":
        name = "bf16" if device.type == "cpu" or settings.amp.get("enabled") == "auto" else "fp16"
    if AMP_DTYPES[name] == torch.float16 and device.type == "cpu":
        raise ConfigError("train.amp.dtype: fp16 autocast is CUDA-only; use bf16 on CPU")
    return AMP_DTYPES[name]


class TrainStep:
    """Owns AMP (autocast dtype and fp16 grad scaler), gradient clipping, gradient
    accumulation (`train.accumulate: N`: the optimizer steps every N iterations on the mean of
    their gradients) and the EMA update."""

    def __init__(self, model: nn.Module, train_module: nn.Module, optimizer: torch.optim.Optimizer,
                 settings: Any, device: torch.device, amp_dtype: torch.dtype | None, ema: Any = None,
                 channels_last: bool = False) -> None:
        self.model, self.train_module, self.optimizer = model, train_module, optimizer
        self.device, self.amp_dtype, self.ema, self.channels_last = device, amp_dtype, ema, channels_last
        self.clip_grad = settings.clip_grad
        self.accumulate = int(settings.accumulate)
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    def __call__(self, batch: Any, update: bool, check: Callable[[dict], None] | None = None) -> dict[str, Any]:
        """Forward and backward one batch; step the optimizer when `update`. `check(outputs)`
        sees the reduced losses before any gradient is applied (CheckInvalidLoss)."""
        inputs, samples = split_batch(batch)
        inputs = inputs.to(self.device, non_blocking=True)
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        samples = move_samples(samples, self.device)
        sync = update or not isinstance(self.train_module, nn.parallel.DistributedDataParallel)
        with contextlib.nullcontext() if sync else self.train_module.no_sync():
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None):
                losses = self.train_module(inputs, samples)
            total, logged = parse_losses(losses)
            reduced = {k: float(dist.all_reduce_mean(v.detach().float())) for k, v in logged.items()}
            out: dict[str, Any] = {"loss": float(dist.all_reduce_mean(total.detach().float())),
                                   **{k: v for k, v in reduced.items() if k != "loss"}}
            if check is not None:
                check(out)
            scaled = total / self.accumulate if self.accumulate > 1 else total
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        if update:
            out.update(self._update())
        return out

    def _update(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.scaler is not None and self.clip_grad:
            self.scaler.unscale_(self.optimizer)
        if self.clip_grad:
            out["grad_norm"] = self._clip()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        return out

    def _clip(self) -> float:
        c = self.clip_grad or {}
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        return float(torch.nn.utils.clip_grad_norm_(params, float(c["max_norm"]), float(c.get("norm_type", 2))))


def finite_or_raise(out: dict[str, Any], where: str, lr: float, last_checkpoint: Any, error: type) -> None:
    """Raise `error` naming the place, the non-finite entries and the last good checkpoint."""
    if math.isfinite(out["loss"]):
        return
    bad = ", ".join(f"{k}={v}" for k, v in out.items() if isinstance(v, float) and not math.isfinite(v) and k != "loss")
    last = f"; last good checkpoint: {last_checkpoint}" if last_checkpoint else "; no checkpoint was written yet"
    raise error(f"invalid loss at {where}: {bad or 'loss=' + str(out['loss'])} (learning rate {lr:.3g}; lower "
                f"train.optimizer.lr or enable train.clip_grad){last}")
