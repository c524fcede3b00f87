"""Learning-rate schedules from `train.schedulers`, a list composed like MMEngine's param
schedulers (factors of all active schedulers multiply):

    schedulers:
      - {type: LinearLR, start_factor: 1.0e-5, by_epoch: false, begin: 0, end: 1000}
      - {type: CosineAnnealingLR, eta_min: 2.0e-4, begin: 150, end: 300, by_epoch: true,
         convert_to_iter_based: true}

Each scheduler counts steps from its `begin` (epochs when `by_epoch`, else iterations) and stops
changing at `end` (default: the end of training), keeping its last value. `convert_to_iter_based`
lets an epoch-based scheduler change every iteration. The value for a global iteration is a
closed form of that iteration, so resuming needs no scheduler state beyond the loop position.

Types: LinearLR (linear warm-up), QuadraticWarmupLR, MultiStepLR, CosineAnnealingLR,
FlatCosineLR (constant for `flat_ratio` of training, then cosine: RTMDet's schedule without
having to restate the epochs), ConstantLR.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import torch

from det.core.errors import ConfigError, did_you_mean

INF = float("inf")


@dataclass
class _Sched:
    kind: str
    by_epoch: bool
    convert: bool
    begin: float
    end: float
    opts: dict

    def step_of(self, it: int, ipe: int) -> float | None:
        """This scheduler's step count at global iteration `it` (None before `begin`)."""
        if self.by_epoch and not self.convert:
            now, begin, end = it // ipe, self.begin, self.end
        elif self.by_epoch:
            now, begin, end = it, int(self.begin * ipe), (self.end * ipe if self.end != INF else INF)
        else:
            now, begin, end = it, self.begin, self.end
        if now < begin:
            return None
        return min(now, end - 1) - begin if end != INF else now - begin

    def length(self, ipe: int) -> float:
        if self.by_epoch and self.convert:
            return (self.end - self.begin) * ipe if self.end != INF else INF
        return self.end - self.begin

    def factor(self, it: int, ipe: int, base_lr: float) -> float:
        k = self.step_of(it, ipe)
        if k is None:
            return 1.0
        o = self.opts
        if self.kind == "LinearLR":
            total = self.length(ipe) - 1
            start, stop = float(o.get("start_factor", 1.0 / 3)), float(o.get("end_factor", 1.0))
            return start + (stop - start) * (min(k, total) / total if total > 0 else 1.0)
        if self.kind == "QuadraticWarmupLR":
            total = self.length(ipe)
            return min(1.0, ((k + 1) / total) ** 2)
        if self.kind == "ConstantLR":
            return float(o.get("factor", 1.0 / 3)) if k < self.length(ipe) - 1 else 1.0
        if self.kind == "MultiStepLR":
            milestones = sorted(o["milestones"])
            if self.by_epoch and self.convert:
                milestones = [m * ipe for m in milestones]
            return float(o.get("gamma", 0.1)) ** bisect.bisect_right(milestones, k)
        # cosine kinds
        t_max = o.get("T_max")
        t_max = (t_max * ipe if self.by_epoch and self.convert else t_max) if t_max else self.length(ipe)
        if "eta_min_ratio" in o:
            ratio = float(o["eta_min_ratio"])
        else:
            ratio = float(o.get("eta_min", 0.0)) / base_lr if base_lr > 0 else 0.0
        return ratio + (1 - ratio) * (1 + math.cos(math.pi * k / t_max)) / 2


KINDS = {
    "LinearLR": {"start_factor", "end_factor"},
    "QuadraticWarmupLR": set(),
    "ConstantLR": {"factor"},
    "MultiStepLR": {"milestones", "gamma"},
    "CosineAnnealingLR": {"T_max", "eta_min", "eta_min_ratio"},
    "FlatCosineLR": {"flat_ratio", "eta_min", "eta_min_ratio"},
}
COMMON = {"type", "by_epoch", "begin", "end", "convert_to_iter_based"}


class LRSchedule:
    """Composes the schedulers; `apply(optimizer, it)` sets each group's lr for iteration `it`."""

    def __init__(self, cfgs: list[dict] | None, iters_per_epoch: int, max_epochs: int | None,
                 max_iters: int, epoch_based: bool):
        self.ipe = max(1, iters_per_epoch)
        self.scheds: list[_Sched] = []
        if cfgs is not None and not isinstance(cfgs, list):
            raise ConfigError("train.schedulers: expected a list of schedulers")
        for i, cfg in enumerate(cfgs or []):
            where = f"train.schedulers.{i}"
            if not isinstance(cfg, dict) or "type" not in cfg:
                raise ConfigError(f"{where}: expected a mapping with 'type' (one of {', '.join(KINDS)})")
            kind = cfg["type"]
            if kind not in KINDS:
                raise ConfigError(f"{where}.type: unknown scheduler '{kind}'{did_you_mean(kind, KINDS)}")
            for key in cfg:
                if key not in COMMON | KINDS[kind]:
                    raise ConfigError(f"{where}.{key}: unknown key for {kind}{did_you_mean(key, COMMON | KINDS[kind])}")
            by_epoch = bool(cfg.get("by_epoch", epoch_based))
            total = (max_epochs or max(1, max_iters // self.ipe)) if by_epoch else max_iters
            begin = cfg.get("begin", 0)
            end = cfg.get("end", total)
            opts = {k: v for k, v in cfg.items() if k not in COMMON}
            if kind == "MultiStepLR" and "milestones" not in opts:
                raise ConfigError(f"{where}.milestones: required by MultiStepLR")
            if kind == "FlatCosineLR":
                flat = float(opts.pop("flat_ratio", 0.5))
                if not 0 <= flat < 1:
                    raise ConfigError(f"{where}.flat_ratio: must be in [0, 1), got {flat}")
                begin = cfg.get("begin", int(round(flat * end)))
                kind = "CosineAnnealingLR"
            if "eta_min" in opts and "eta_min_ratio" in opts:
                raise ConfigError(f"{where}: give eta_min or eta_min_ratio, not both")
            if end <= begin:
                raise ConfigError(f"{where}: end ({end}) must be after begin ({begin})")
            self.scheds.append(_Sched(kind, by_epoch, bool(cfg.get("convert_to_iter_based", False)), begin, end, opts))

    def factor(self, it: int, base_lr: float) -> float:
        f = 1.0
        for s in self.scheds:
            f *= s.factor(it, self.ipe, base_lr)
        return f

    def apply(self, optimizer: torch.optim.Optimizer, it: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor(it, group["initial_lr"])
