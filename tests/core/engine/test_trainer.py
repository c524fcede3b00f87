"""Trainer: exact resume, invalid-loss stop, checkpoints, pipeline switch, iteration loop, AMP."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from det.core.engine import InvalidLossError, Trainer, seed_everything
from det.core.errors import ConfigError
from det.core.evaluation.evaluator import VOCMetric
from det.core.fileio import load_checkpoint
from engine_tiny import SquaresDataset, TinyDet, collate

VOLATILE = {"time", "data_time", "memory"}


def make(work_dir: Path, max_epochs: int = 2, lr: float = 0.01, num_workers: int = 0, **train) -> Trainer:
    seed_everything(0, deterministic=True)
    ds, vds = SquaresDataset(16), SquaresDataset(6, augment=False)
    cfg = {"max_epochs": max_epochs, "log_interval": 2, "optimizer": {"type": "SGD", "lr": lr, "momentum": 0.9, "weight_decay": 1e-4},
           "paramwise": {"norm_decay_mult": 0.0},
           "schedulers": [{"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "begin": 0, "end": 3},
                          {"type": "MultiStepLR", "milestones": [1], "gamma": 0.5}],
           "ema": {"type": "ExpMomentumEMA", "momentum": 0.01, "gamma": 20, "update_buffers": True},
           "checkpoint": {"save_best": "auto"}, **train}
    return Trainer(TinyDet(norm=True), cfg, work_dir, train_dataset=ds, collate_fn=collate, batch_size=4,
                   num_workers=num_workers, val_dataset=vds, evaluator=VOCMetric(vds), preset={"train": cfg}, seed=0, deterministic=True)


def records(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE} for line in path.read_text().splitlines()]


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_resume_matches_straight_run(tmp_path, workers):
    make(tmp_path / "a", num_workers=workers).fit()
    make(tmp_path / "b", max_epochs=1, num_workers=workers).fit()
    make(tmp_path / "b", max_epochs=2, num_workers=workers).fit(resume=tmp_path / "b" / "last.pt")
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("state_dict", "raw_state_dict"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for idx in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][idx]["momentum_buffer"], b["optimizer"]["state"][idx]["momentum_buffer"])
    ra, rb = records(tmp_path / "a" / "log.jsonl"), records(tmp_path / "b" / "log.jsonl")
    assert len(ra) == 6 and ra == rb
    assert a["meta"]["epoch"] == b["meta"]["epoch"] == 2


def test_checkpoint_contents_and_files(tmp_path):
    t = make(tmp_path, max_epochs=3, checkpoint={"save_best": "pascal_voc/mAP", "max_keep": 2})
    result = t.fit()
    names = sorted(p.name for p in tmp_path.glob("*.pt"))
    assert names == ["best_pascal_voc_mAP.pt", "epoch_2.pt", "epoch_3.pt", "last.pt"]
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["meta"]["classes"] == ["red", "green", "blue"] and ckpt["meta"]["epoch"] == 3
    assert ckpt["preset"]["train"]["max_epochs"] == 3
    best = torch.load(tmp_path / "best_pascal_voc_mAP.pt", weights_only=True)
    assert best["meta"]["epoch"] == result["best"]["epoch"]
    vals = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if '"val"' in line]
    assert max(v["pascal_voc/mAP"] for v in vals) == result["best"]["value"]
    train_rec = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert {"step", "epoch", "iter", "lr", "loss", "loss_cls", "loss_bbox", "time", "data_time", "memory"} <= train_rec.keys()


def test_invalid_loss_stops_and_keeps_last_checkpoint(tmp_path):
    t = make(tmp_path, max_epochs=1, lr=0.01)
    t.fit()
    before = (tmp_path / "last.pt").read_bytes()
    t2 = make(tmp_path, max_epochs=4, lr=1e12, schedulers=[])
    with pytest.raises(InvalidLossError, match=r"invalid loss at epoch 2, iteration \d+ \(global iteration \d+\)") as info:
        t2.fit(resume=tmp_path / "last.pt")
    assert info.value.exit_code != 0
    assert "last.pt" in str(info.value) or "epoch_1.pt" in str(info.value)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert not (tmp_path / "epoch_2.pt").exists()


def test_class_count_mismatch_is_an_error(tmp_path):
    from det.core.errors import ConfigError

    ds = SquaresDataset(4)
    with pytest.raises(ConfigError, match="num_classes is 5 but the dataset has 3 classes"):
        Trainer(TinyDet(num_classes=5), {"max_epochs": 1, "optimizer": {"type": "SGD", "lr": 0.1}}, tmp_path,
                train_dataset=ds, collate_fn=collate, batch_size=2)


def test_pipeline_switch_and_iteration_loop(tmp_path):
    seed_everything(0)
    ds = SquaresDataset(8)
    cfg = {"max_epochs": 3, "switch_epoch": -1, "log_interval": 1, "optimizer": {"type": "SGD", "lr": 0.01}}
    t = Trainer(TinyDet(), cfg, tmp_path / "sw", train_dataset=ds, collate_fn=collate, batch_size=4,
                switch_pipeline=[{"type": "Plain"}])
    seen = []

    class Spy(__import__("det.core.engine", fromlist=["Hook"]).Hook):
        def before_iter(self, trainer):
            seen.append((trainer.epoch, ds.pipeline_name))

    t.register_hook(Spy())
    t.fit()
    assert [s for s in seen if s[0] < 2] == [(0, "default")] * 2 + [(1, "default")] * 2
    assert [s for s in seen if s[0] == 2] == [(2, "Plain")] * 2

    cfg = {"max_iters": 5, "val_interval": 3, "log_interval": 2, "checkpoint": {"interval": 2},
           "optimizer": {"type": "SGD", "lr": 0.01}}
    vds = SquaresDataset(3, augment=False)
    t = Trainer(TinyDet(), cfg, tmp_path / "it", train_dataset=ds, collate_fn=collate, batch_size=4,
                val_dataset=vds, evaluator=VOCMetric(vds))
    t.fit()
    assert sorted(p.name for p in (tmp_path / "it").glob("iter_*.pt")) == ["iter_2.pt", "iter_4.pt", "iter_5.pt"]
    recs = [json.loads(line) for line in (tmp_path / "it" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if r["mode"] == "val"] == [3, 5]
    assert [r["step"] for r in recs if r["mode"] == "train"] == [2, 4, 5]


def test_bf16_autocast_on_cpu(tmp_path):
    t = make(tmp_path, max_epochs=1, amp=True)
    assert t.amp_dtype == torch.bfloat16 and t.scaler is None
    t.fit()
    assert (tmp_path / "last.pt").exists()


@pytest.mark.parametrize("native", [True, False])
def test_amp_auto_follows_native_bf16(tmp_path, monkeypatch, native):
    monkeypatch.setattr("det.core.engine.settings.native_bf16", lambda device: native)
    t = make(tmp_path, max_epochs=1, amp={"enabled": "auto"})
    assert t.amp_dtype == (torch.bfloat16 if native else None)
    forced = Trainer(TinyDet(), {"max_epochs": 1, "optimizer": {"type": "SGD", "lr": 0.01}, "amp": {"enabled": "auto"}},
                     tmp_path / "forced", train_dataset=SquaresDataset(4), collate_fn=collate, batch_size=4, amp=False)
    assert forced.amp_dtype is None


def test_amp_enabled_must_be_bool_or_auto(tmp_path):
    with pytest.raises(ConfigError, match="train.amp.enabled"):
        make(tmp_path, amp={"enabled": "yes"})


def test_iteration_loop_resumes_mid_epoch_exactly(tmp_path):
    def run(work: Path, max_iters: int, resume: Path | None = None) -> None:
        seed_everything(0)
        cfg = {"max_iters": max_iters, "log_interval": 1, "checkpoint": {"interval": 3},
               "optimizer": {"type": "AdamW", "lr": 0.01},
               "schedulers": [{"type": "LinearLR", "start_factor": 0.2, "by_epoch": False, "end": 4}]}
        Trainer(TinyDet(norm=True), cfg, work, train_dataset=SquaresDataset(16), collate_fn=collate, batch_size=4,
                seed=3).fit(resume=resume)

    run(tmp_path / "a", 7)
    run(tmp_path / "b", 3)
    run(tmp_path / "b", 7, resume=tmp_path / "b" / "iter_3.pt")  # iteration 3 of a 4-iteration epoch
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    assert records(tmp_path / "a" / "log.jsonl") == records(tmp_path / "b" / "log.jsonl")


def test_load_from_reports_missing_unexpected_and_mismatched(tmp_path, caplog):
    from det.core.engine.checkpoint import load_weights

    src = TinyDet(num_classes=5, norm=True)
    state = {k: v for k, v in src.state_dict().items() if k != "body.1.running_mean"}
    torch.save({"state_dict": {**state, "extra.weight": torch.zeros(1)}}, tmp_path / "w.pt")
    dst = TinyDet(num_classes=3, norm=True)
    before = dst.box.weight.detach().clone()
    report = load_weights(dst, tmp_path / "w.pt")
    assert report["unexpected"] == ["extra.weight"]
    assert any(k.startswith("cls.weight") for k in report["mismatched"])
    assert "body.1.running_mean" in report["missing"]
    assert torch.equal(dst.box.weight, src.box.weight) and not torch.equal(before, dst.box.weight)


def test_channels_last_layout_and_same_gradients(tmp_path):
    nhwc = make(tmp_path / "a", max_epochs=1, channels_last=True)
    convs = [m.weight for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    auto = make(tmp_path / "b", max_epochs=1).settings
    assert auto.use_channels_last("cpu") and not auto.use_channels_last("cuda")
    assert not make(tmp_path / "c", max_epochs=1, channels_last=False).channels_last
    # one step in either layout: the same losses and gradients up to summation order
    seed_everything(0)
    plain = TinyDet(norm=True)
    nhwc_model = TinyDet(norm=True)
    nhwc_model.load_state_dict(plain.state_dict())
    nhwc_model.to(memory_format=torch.channels_last)
    ds = SquaresDataset(8)
    inputs, samples = collate([ds[i] for i in range(4)])
    la = plain.loss(inputs, samples)
    lb = nhwc_model.loss(inputs.contiguous(memory_format=torch.channels_last), samples)
    for key in la:
        torch.testing.assert_close(la[key], lb[key], rtol=1e-5, atol=1e-5)
    sum(la.values()).backward(), sum(lb.values()).backward()
    for (name, p), q in zip(plain.named_parameters(), nhwc_model.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4 * float(p.grad.abs().max()) + 1e-5, msg=name)
    with pytest.raises(Exception, match="train.channels_last: expected auto, true or false"):
        make(tmp_path / "d", channels_last="yes")
