"""Exponential moving averages of model weights (`train.ema`).

    ema: {type: ExpMomentumEMA, momentum: 0.0002, gamma: 2000, update_buffers: true}

ExpMomentumEMA (RTMDet/YOLOX): at update step n (counted from 0) the weight of the new model is
`(1 - momentum) * exp(-(1 + n) / gamma) + momentum`, large early and decaying to `momentum`.
ExponentialMovingAverage uses the constant `momentum`. `avg = avg * (1 - w) + new * w`.
With `update_buffers`, buffers (BN statistics) are averaged too, otherwise copied.
The first update copies the model (MMEngine's convention). Validation and saved `ema_state_dict` use the averaged weights.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from det.core.errors import ConfigError, did_you_mean

EMA_TYPES = ("ExpMomentumEMA", "ExponentialMovingAverage")


class ModelEMA:
    def __init__(self, model: nn.Module, type: str = "ExpMomentumEMA", momentum: float = 0.0002,
                 gamma: float = 2000, update_buffers: bool = False, interval: int = 1, priority: int | str | None = None):
        if type not in EMA_TYPES:
            raise ConfigError(f"train.ema.type: unknown EMA '{type}'{did_you_mean(type, EMA_TYPES)}")
        if not 0 < momentum < 1:
            raise ConfigError(f"train.ema.momentum: must be in (0, 1), got {momentum}")
        if gamma <= 0:
            raise ConfigError(f"train.ema.gamma: must be > 0, got {gamma}")
        self.kind, self.momentum, self.gamma = type, float(momentum), float(gamma)
        self.update_buffers, self.interval = bool(update_buffers), int(interval)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.steps = 0

    def weight(self, steps: int) -> float:
        if self.kind == "ExpMomentumEMA":
            return (1 - self.momentum) * math.exp(-float(1 + steps) / self.gamma) + self.momentum
        return self.momentum

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Call after each optimizer step with the (unwrapped) training model."""
        if self.steps == 0:  # the average starts from the weights after the first step
            self.module.load_state_dict(model.state_dict())
        elif self.steps % self.interval == 0:
            w = self.weight(self.steps)
            src = dict(model.named_parameters())
            for name, avg in self.module.named_parameters():
                avg.mul_(1 - w).add_(src[name].detach(), alpha=w)
            src_b = dict(model.named_buffers())
            for name, avg in self.module.named_buffers():
                new = src_b[name].detach()
                if self.update_buffers and avg.is_floating_point():
                    avg.mul_(1 - w).add_(new, alpha=w)
                else:
                    avg.copy_(new)
        elif not self.update_buffers:
            for avg, new in zip(self.module.buffers(), model.buffers()):
                avg.copy_(new.detach())
        self.steps += 1

    def state_dict(self) -> dict:
        return {"state_dict": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["state_dict"])
        self.steps = int(state["steps"])
