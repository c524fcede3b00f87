"""Gradient accumulation equals the larger batch; any torch.optim optimizer by name with its
keys checked; PolyLR and CosineAnnealingMomentum; train.compile on CPU."""
from __future__ import annotations

import math

import pytest
import torch

from det.core.engine import Trainer, seed_everything
from det.core.engine.schedulers import LRSchedule
from det.core.errors import ConfigError
from engine_tiny import SquaresDataset, TinyDet, collate


def _train(tmp_path, name: str, batch: int, accumulate: int = 1, **extra) -> dict:
    seed_everything(0)
    model = TinyDet(norm=False)
    cfg = {"max_epochs": 1, "optimizer": {"type": "SGD", "lr": 0.5}, "accumulate": accumulate, **extra}
    t = Trainer(model, cfg, tmp_path / name, train_dataset=SquaresDataset(4, augment=False), collate_fn=collate,
                batch_size=batch, seed=0)
    t.fit()
    return {k: v.clone() for k, v in t.model.state_dict().items()}


def test_accumulating_two_batches_of_two_equals_one_batch_of_four(tmp_path):
    big = _train(tmp_path, "b4", 4)
    acc = _train(tmp_path, "b2x2", 2, accumulate=2)
    plain = _train(tmp_path, "b2", 2)
    for name in big:
        torch.testing.assert_close(acc[name], big[name], rtol=0, atol=1e-5, msg=name)
    assert any((plain[n] - big[n]).abs().max() > 1e-4 for n in big)  # two steps differ: the test can fail


def test_accumulate_must_divide_iteration_intervals(tmp_path):
    with pytest.raises(ConfigError, match="train.checkpoint.interval: 3 is not a multiple of train.accumulate"):
        Trainer(TinyDet(), {"max_iters": 8, "val_interval": 4, "checkpoint": {"interval": 3}, "accumulate": 2,
                            "optimizer": {"type": "SGD", "lr": 0.1}}, tmp_path, train_dataset=SquaresDataset(4),
                collate_fn=collate, batch_size=2)


def test_any_torch_optimizer_by_name_with_checked_keys(tmp_path):
    t = Trainer(TinyDet(), {"max_epochs": 1, "optimizer": {"type": "RMSprop", "lr": 0.01, "alpha": 0.9}}, tmp_path,
                train_dataset=SquaresDataset(4), collate_fn=collate, batch_size=2)
    assert isinstance(t.optimizer, torch.optim.RMSprop) and t.optimizer.defaults["alpha"] == 0.9
    with pytest.raises(ConfigError, match=r"train.optimizer.alpah: unknown key for RMSprop; did you mean 'alpha'"):
        Trainer(TinyDet(), {"max_epochs": 1, "optimizer": {"type": "RMSprop", "lr": 0.01, "alpah": 0.9}}, tmp_path,
                train_dataset=SquaresDataset(4), collate_fn=collate, batch_size=2)
    with pytest.raises(ConfigError, match="train.optimizer.type: unknown optimizer 'Adamw'; did you mean 'AdamW'"):
        Trainer(TinyDet(), {"max_epochs": 1, "optimizer": {"type": "Adamw", "lr": 0.01}}, tmp_path,
                train_dataset=SquaresDataset(4), collate_fn=collate, batch_size=2)


def test_poly_lr_and_cosine_momentum_match_their_formulas():
    sched = LRSchedule([{"type": "PolyLR", "power": 2.0, "eta_min": 0.01, "by_epoch": False},
                        {"type": "CosineAnnealingMomentum", "eta_min": 0.8, "by_epoch": False}], 10, None, 100, False)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    opt.param_groups[0]["initial_lr"] = 0.1
    for it in (0, 30, 99):
        sched.apply(opt, it)
        lr = (0.1 - 0.01) * (1 - it / 100) ** 2 + 0.01
        mom = 0.8 + (0.9 - 0.8) * (1 + math.cos(math.pi * it / 100)) / 2
        assert opt.param_groups[0]["lr"] == pytest.approx(lr)
        assert opt.param_groups[0]["momentum"] == pytest.approx(mom)


@pytest.mark.slow
def test_compile_trains_a_tiny_model_on_cpu(tmp_path, caplog):
    compiled = _train(tmp_path, "c", 4, compile=True)
    eager = _train(tmp_path, "e", 4)
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-5, msg=name)
    assert "train.compile" in caplog.text  # says whether torch.compile ran or why not
