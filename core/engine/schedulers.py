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
having to restate the epochs), ConstantLR, PolyLR (power, eta_min), and CosineAnnealingMomentum
(anneals SGD's momentum or Adam's beta1 to eta_min instead of the lr).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import torch

from det.core.config.build import check_keys
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
        return 1.0 if k is None else FACTORS[self.kind](self, k, ipe, base_lr)


def _linear(s: _Sched, k: float, ipe: int, base: float) -> float:
    total = s.length(ipe) - 1
    start, stop = float(s.opts.get("start_factor", 1.0 / 3)), float(s.opts.get("end_factor", 1.0))
    return start + (stop - start) * (min(k, total) / total if total > 0 else 1.0)


def _quadratic(s: _Sched, k: float, ipe: int, base: float) -> float:
    return min(1.0, ((k + 1) / s.length(ipe)) ** 2)


def _constant(s: _Sched, k: float, ipe: int, base: float) -> float:
    return float(s.opts.get("factor", 1.0 / 3)) if k < s.length(ipe) - 1 else 1.0


def _multistep(s: _Sched, k: float, ipe: int, base: float) -> float:
    milestones = sorted(s.opts["milestones"])
    if s.by_epoch and s.convert:
        milestones = [m * ipe for m in milestones]
    return float(s.opts.get("gamma", 0.1)) ** bisect.bisect_right(milestones, k)


def _floor_ratio(s: _Sched, base: float) -> float:
    if "eta_min_ratio" in s.opts:
        return float(s.opts["eta_min_ratio"])
    return float(s.opts.get("eta_min", 0.0)) / base if base > 0 else 0.0


def _cosine(s: _Sched, k: float, ipe: int, base: float) -> float:
    t_max = s.opts.get("T_max")
    t_max = (t_max * ipe if s.by_epoch and s.convert else t_max) if t_max else s.length(ipe)
    ratio = _floor_ratio(s, base)
    return ratio + (1 - ratio) * (1 + math.cos(math.pi * k / t_max)) / 2


def _poly(s: _Sched, k: float, ipe: int, base: float) -> float:
    """MMEngine's PolyLR: (base - eta_min) * (1 - k / length) ** power + eta_min."""
    ratio, total = _floor_ratio(s, base), s.length(ipe)
    return ratio + (1 - ratio) * (1 - min(k, total) / total) ** float(s.opts.get("power", 1.0))


# kind -> factor(scheduler, step, iters per epoch, base value); plugins add kinds with
# det.core.registry.register("scheduler", Name) (a `keys` attribute lists their options).
FACTORS = {"LinearLR": _linear, "QuadraticWarmupLR": _quadratic, "ConstantLR": _constant, "MultiStepLR": _multistep,
           "CosineAnnealingLR": _cosine, "FlatCosineLR": _cosine, "PolyLR": _poly, "CosineAnnealingMomentum": _cosine}
# Schedules of the optimizer's momentum (SGD momentum, Adam beta1) instead of its lr.
MOMENTUM_KINDS = {"CosineAnnealingMomentum"}


KINDS = {
    "LinearLR": {"start_factor", "end_factor"},
    "QuadraticWarmupLR": set(),
    "ConstantLR": {"factor"},
    "MultiStepLR": {"milestones", "gamma"},
    "CosineAnnealingLR": {"T_max", "eta_min", "eta_min_ratio"},
    "FlatCosineLR": {"flat_ratio", "eta_min", "eta_min_ratio"},
    "PolyLR": {"power", "eta_min", "eta_min_ratio"},
    "CosineAnnealingMomentum": {"T_max", "eta_min", "eta_min_ratio"},
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
            if kind not in FACTORS:
                raise ConfigError(f"{where}.type: unknown scheduler '{kind}'{did_you_mean(kind, FACTORS)}")
            allowed = KINDS.get(kind, getattr(FACTORS[kind], "keys", None))
            if allowed is not None:
                check_keys(cfg, COMMON | set(allowed), owner=kind, where=where)
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

    def factor(self, it: int, base_lr: float, momentum: bool = False) -> float:
        f = 1.0
        for s in self.scheds:
            if (s.kind in MOMENTUM_KINDS) == momentum:
                f *= s.factor(it, self.ipe, base_lr)
        return f

    def apply(self, optimizer: torch.optim.Optimizer, it: int) -> None:
        """Set each group's lr (and momentum, with a momentum schedule) for iteration `it`."""
        has_momentum = any(s.kind in MOMENTUM_KINDS for s in self.scheds)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor(it, group["initial_lr"])
            if has_momentum:
                key = "betas" if "betas" in group else "momentum"
                base = group.setdefault("initial_momentum", group[key][0] if key == "betas" else group[key])
                value = base * self.factor(it, base, momentum=True)
                group[key] = (value, *group[key][1:]) if key == "betas" else value
