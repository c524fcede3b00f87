"""The one loader builder: aspect-ratio grouped batches of a fixed count per epoch, skipping
batches for an exact mid-epoch resume, and the Trainer training through it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from det.core.data.loader import build_loader
from det.core.engine import Trainer, seed_everything
from det.core.fileio import load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from engine_tiny import SquaresDataset, TinyDet, collate  # noqa: E402


class Oriented(SquaresDataset):
    """Squares whose recorded size makes images 0, 3, 6, ... portrait, the rest landscape."""

    def get_data_info(self, i: int) -> dict:
        return {"width": 20, "height": 40} if i % 3 == 0 else {"width": 40, "height": 20}


def _portrait(i: int) -> bool:
    return i % 3 == 0


def test_grouped_batches_are_same_orientation_and_skip_is_the_epoch_tail():
    ds = Oriented(17)
    loader = build_loader(ds, {"batch_size": 4, "aspect_ratio_grouping": True, "num_workers": 0}, train=True,
                          seed=1, collate_fn=collate)
    assert len(loader.batch_sampler) == 5  # ceil(17 / 4) every epoch
    for epoch in range(4):
        loader.set_epoch(epoch)
        batches = list(loader.batch_sampler)
        assert len(batches) == 5
        assert all(len({_portrait(i) for i in b}) == 1 for b in batches), batches
        assert len(sum(batches, [])) == len(set(sum(batches, [])))  # no image twice in an epoch
        loader.set_epoch(epoch, 2)
        assert list(loader.batch_sampler) == batches[2:]
    plain = build_loader(ds, {"batch_size": 4, "num_workers": 0}, train=True, seed=1, collate_fn=collate)
    plain.set_epoch(0)
    assert any(len({_portrait(i) for i in b}) == 2 for b in plain.batch_sampler)  # grouping is what did it


def _run(work: Path, max_iters: int, resume: Path | None = None) -> Trainer:
    seed_everything(0)
    cfg = {"max_iters": max_iters, "log_interval": 1, "checkpoint": {"interval": 3},
           "optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}}
    t = Trainer(TinyDet(norm=True), cfg, work, train_dataset=Oriented(16), collate_fn=collate, seed=4,
                loader_cfg={"batch_size": 3, "aspect_ratio_grouping": True, "num_workers": 0})
    t.fit(resume=resume)
    return t


def test_trainer_uses_grouping_and_resumes_exactly(tmp_path):
    seen: list[list[int]] = []
    t = _run(tmp_path / "a", 9)
    t.loader.set_epoch(0)
    seen = list(t.loader.batch_sampler)
    assert all(len({_portrait(i) for i in b}) == 1 for b in seen)
    _run(tmp_path / "b", 3)
    _run(tmp_path / "b", 9, resume=tmp_path / "b" / "iter_3.pt")  # iteration 3 of a 6-iteration epoch
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    strip = [{k: v for k, v in json.loads(x).items() if k not in ("time", "data_time", "memory")}
             for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    strip_b = [{k: v for k, v in json.loads(x).items() if k not in ("time", "data_time", "memory")}
               for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert strip == strip_b and len(strip) == 9
