"""Optimizer param groups, LR schedules (closed forms checked by hand and against MMEngine's
recursive definitions), EMA weights."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from det.core.engine.ema import ModelEMA
from det.core.engine.optim import build_optimizer, param_groups
from det.core.engine.schedulers import LRSchedule
from det.core.errors import ConfigError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)


def _group_of(groups, name):
    return next(g for g in groups if name in g["param_names"])


def test_paramwise_multipliers():
    groups = param_groups(Net(), lr=0.1, weight_decay=0.01,
                          paramwise={"norm_decay_mult": 0.0, "bias_decay_mult": 0.5, "bias_lr_mult": 2.0,
                                     "custom_keys": {"head": {"lr_mult": 0.1}, "head.weight": {"decay_mult": 3.0}}})
    assert _group_of(groups, "backbone.1.weight")["weight_decay"] == 0.0
    assert _group_of(groups, "backbone.1.bias")["weight_decay"] == 0.0
    conv_b = _group_of(groups, "backbone.0.bias")
    assert conv_b["weight_decay"] == pytest.approx(0.005) and conv_b["lr"] == pytest.approx(0.2)
    assert _group_of(groups, "backbone.0.weight")["weight_decay"] == pytest.approx(0.01)
    # the longest matching custom key wins
    hw = _group_of(groups, "head.weight")
    assert hw["lr"] == pytest.approx(0.1) and hw["weight_decay"] == pytest.approx(0.03)
    hb = _group_of(groups, "head.bias")
    assert hb["lr"] == pytest.approx(0.01) and hb["weight_decay"] == pytest.approx(0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(Net().parameters()))


def test_optimizer_errors_and_scaling():
    opt = build_optimizer(Net(), {"type": "AdamW", "lr": 0.004, "weight_decay": 0.05, "betas": [0.9, 0.99]}, lr_scale=0.5)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == pytest.approx(0.002)
    with pytest.raises(ConfigError, match=r"train.optimizer.type: unknown optimizer 'SDG'; did you mean 'SGD'"):
        build_optimizer(Net(), {"type": "SDG", "lr": 0.1})
    with pytest.raises(ConfigError, match="train.paramwise.norm_decay: unknown key; did you mean 'norm_decay_mult'"):
        param_groups(Net(), 0.1, 0.0, {"norm_decay": 0})


def _mmengine_linear(start, end_factor, total_steps, n):
    """MMEngine LinearLR's recursive form: lr_k = lr_{k-1} * (1 + (e - s) / (T s + (k - 1)(e - s)))."""
    lrs, lr = [], start
    t = total_steps - 1
    for k in range(n):
        if k == 0:
            lr = start
        elif k <= t:
            lr = lr * (1 + (end_factor - start) / (t * start + (k - 1) * (end_factor - start)))
        lrs.append(lr)
    return lrs


def test_linear_warmup_matches_recursive_form():
    s = LRSchedule([{"type": "LinearLR", "start_factor": 0.001, "by_epoch": False, "begin": 0, "end": 20}], 10, 5, 50, True)
    expected = _mmengine_linear(0.001, 1.0, 20, 30)
    assert [s.factor(i, 1.0) for i in range(30)] == pytest.approx(expected)
    assert s.factor(0, 1.0) == pytest.approx(0.001) and s.factor(19, 1.0) == pytest.approx(1.0)


def test_rtmdet_style_cosine_and_flat_cosine():
    # 10 epochs of 4 iterations; flat for 5 epochs then cosine to 5% per iteration
    cfgs = [{"type": "LinearLR", "start_factor": 1e-5, "by_epoch": False, "begin": 0, "end": 6},
            {"type": "CosineAnnealingLR", "eta_min": 0.05 * 0.004, "begin": 5, "end": 10, "T_max": 5,
             "by_epoch": True, "convert_to_iter_based": True}]
    s = LRSchedule(cfgs, 4, 10, 40, True)
    assert s.factor(10, 0.004) == pytest.approx(1.0)
    assert s.factor(20, 0.004) == pytest.approx(1.0)  # cosine step 0
    k = 27 - 20
    assert s.factor(27, 0.004) == pytest.approx(0.05 + 0.95 * (1 + math.cos(math.pi * k / 20)) / 2)
    assert s.factor(39, 0.004) == pytest.approx(0.05 + 0.95 * (1 + math.cos(math.pi * 19 / 20)) / 2)
    flat = LRSchedule([cfgs[0], {"type": "FlatCosineLR", "flat_ratio": 0.5, "eta_min_ratio": 0.05,
                                 "convert_to_iter_based": True}], 4, 10, 40, True)
    assert [flat.factor(i, 0.004) for i in range(40)] == pytest.approx([s.factor(i, 0.004) for i in range(40)])


def test_multistep_quadratic_and_epoch_granularity():
    s = LRSchedule([{"type": "MultiStepLR", "milestones": [2, 3], "gamma": 0.1}], 5, 4, 20, True)
    assert [s.factor(i, 1.0) for i in (0, 9, 10, 14, 15, 19)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    q = LRSchedule([{"type": "QuadraticWarmupLR", "by_epoch": False, "end": 4}], 5, 4, 20, True)
    assert [q.factor(i, 1.0) for i in range(6)] == pytest.approx([1 / 16, 4 / 16, 9 / 16, 1, 1, 1])
    # epoch-based cosine without conversion: constant within an epoch
    c = LRSchedule([{"type": "CosineAnnealingLR", "eta_min": 0.0}], 5, 4, 20, True)
    assert c.factor(5, 1.0) == c.factor(9, 1.0) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    with pytest.raises(ConfigError, match="train.schedulers.0.milestone: unknown key for MultiStepLR; did you mean 'milestones'"):
        LRSchedule([{"type": "MultiStepLR", "milestone": [1]}], 5, 4, 20, True)


def test_exp_momentum_ema():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = ModelEMA(model, type="ExpMomentumEMA", momentum=0.0002, gamma=2000)
    with torch.no_grad():
        model.weight.add_(5.0)
    ema.update(model)  # the first update copies
    expected = model.weight.detach().clone()
    assert torch.equal(ema.module.weight, expected)
    for step in range(1, 4):
        with torch.no_grad():
            model.weight.add_(1.0)
        w = (1 - 0.0002) * math.exp(-(1 + step) / 2000) + 0.0002
        expected = expected * (1 - w) + model.weight.detach() * w
        ema.update(model)
        assert torch.allclose(ema.module.weight, expected, atol=1e-6)


def test_custom_keys_values_are_checked_even_without_a_matching_parameter():
    model = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="train.paramwise.custom_keys.norm.decay_mult: expected a finite number >= 0, got 'zero'"):
        param_groups(model, 0.1, 0.1, {"custom_keys": {"norm": {"decay_mult": "zero"}}})
    groups = param_groups(model, 0.1, 0.1, {"custom_keys": {"relative_position_bias_table": {"decay_mult": 0}}})
    assert [g["weight_decay"] for g in groups] == [0.1]  # no parameter of that name: rule unused, still valid
