"""The Trainer's built-in hooks: validation, checkpoints, invalid-loss stop, backbone
unfreezing. HOOKS is the table `train.hooks: [{type: Name, ...}]` builds from (plugins add to
it with `det.core.registry.register("hook", Name)`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from det.core.engine import checkpoint as ckpt_io
from det.core.engine.hooks import Hook
from det.core.engine.logger import TensorBoard
from det.core.errors import ConfigError, DetError

if TYPE_CHECKING:
    from det.core.engine.trainer import Trainer


class InvalidLossError(DetError):
    """Training produced a NaN/inf loss; exit code 3 (the last good checkpoint is kept)."""

    exit_code = 3


class CheckInvalidLoss(Hook):
    """Stops training (exit 3) on a NaN/inf loss before its gradients touch the weights, naming
    the iteration and the last good checkpoint. Registered by default; `interval` checks
    every N-th iteration only."""

    priority = 10

    def __init__(self, interval: int = 1) -> None:
        self.interval = int(interval)

    def after_loss(self, trainer: "Trainer", outputs: dict[str, Any]) -> None:
        from det.core.engine.step import finite_or_raise

        if (trainer.iter + 1) % self.interval:
            return
        where = f"epoch {trainer.epoch + 1}, iteration {trainer.inner_iter + 1} (global iteration {trainer.iter + 1})"
        finite_or_raise(outputs, where, trainer.optimizer.param_groups[0]["lr"], trainer.last_checkpoint, InvalidLossError)


class UnfreezeBackbone(Hook):
    """From epoch `epoch` (1-based: the first epoch that trains it) on, the backbone's frozen
    stages train too: `frozen_stages` becomes -1 and the new parameters join the optimizer with
    the preset's param-wise rules."""

    priority = 20

    def __init__(self, epoch: int, module: str = "backbone") -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ConfigError(f"train.hooks: UnfreezeBackbone.epoch must be an integer >= 1, got {epoch!r}")
        self.epoch, self.module, self.done = epoch, module, False

    def before_epoch(self, trainer: "Trainer") -> None:
        if not self.done and trainer.epoch + 1 >= self.epoch:
            self.unfreeze(trainer)

    def before_load_checkpoint(self, trainer: "Trainer", checkpoint: dict) -> None:
        if not self.done and int(checkpoint["meta"]["epoch"]) + 1 > self.epoch:
            self.unfreeze(trainer)  # the saved optimizer already holds these parameters

    def unfreeze(self, trainer: "Trainer") -> None:
        from det.core.engine.optim import param_groups

        part = getattr(trainer.model, self.module, None)
        if part is None:
            raise ConfigError(f"train.hooks: UnfreezeBackbone: the model has no '{self.module}'")
        if hasattr(part, "frozen_stages"):
            part.frozen_stages = -1
        for p in part.parameters():
            p.requires_grad = True
        part.train(trainer.model.training)
        known = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
        opt = trainer.settings.optimizer
        lr, wd = float(opt["lr"]) * trainer.lr_scale, float(opt.get("weight_decay", 0.0))
        for group in param_groups(trainer.model, lr, wd, trainer.settings.paramwise):
            new = [p for p in group["params"] if id(p) not in known]
            if new:
                trainer.optimizer.add_param_group({**{k: v for k, v in group.items() if k != "param_names"}, "params": new})
        self.done = True
        trainer.log.info(f"epoch {trainer.epoch + 1}: {self.module} unfrozen")


class EvalHook(Hook):
    """Validates when due (epoch- or iteration-based `val_interval`, from `val_begin`, and at
    the end) and tracks the best `checkpoint.save_best` metric."""

    priority = 60

    def after_step(self, trainer: "Trainer") -> None:
        trainer.improved = False
        if trainer.val_dataset is None or trainer.evaluator is None or not self.due(trainer):
            return
        metrics = trainer.validate()
        trainer.last_metrics = metrics
        trainer.improved = self.track_best(trainer, metrics)

    @staticmethod
    def due(trainer: "Trainer") -> bool:
        s = trainer.settings
        if s.epoch_based:
            return trainer.epoch_ended and (trainer.epoch % s.val_interval == 0 or trainer.finished) \
                and trainer.epoch >= s.val_begin
        return (trainer.iter % s.val_interval == 0 or trainer.finished) and trainer.iter >= s.val_begin

    @staticmethod
    def track_best(trainer: "Trainer", metrics: dict[str, float]) -> bool:
        c = trainer.settings.checkpoint
        key = c.get("save_best")
        if not key or not metrics:
            return False
        if key == "auto":
            key = next(iter(metrics))
        if key not in metrics:
            raise ConfigError(f"train.checkpoint.save_best: '{key}' is not among the metrics ({', '.join(metrics)})")
        value, old = metrics[key], trainer.best.get("value")
        greater = c.get("rule", "greater") == "greater"
        if old is None or (value > old if greater else value < old):
            trainer.best = {"metric": key, "value": value, "epoch": trainer.epoch, "iter": trainer.iter}
            return True
        return False


class CheckpointHook(Hook):
    """`epoch_N.pt`/`iter_N.pt` every `checkpoint.interval`, `last.pt` always, `best_<metric>.pt`
    on improvement. Pruning beyond `max_keep` only ever removes periodic files this run wrote
    (their names travel in the checkpoint, so a resumed run knows them too)."""

    priority = 70

    def __init__(self) -> None:
        self.written: list[str] = []

    def after_step(self, trainer: "Trainer") -> None:
        s = trainer.settings
        if s.epoch_based:
            due = trainer.epoch_ended
        else:
            due = trainer.iter % s.checkpoint["interval"] == 0 or trainer.iter % s.val_interval == 0 or trainer.finished
        if due and trainer.is_main:
            self.save(trainer, getattr(trainer, "improved", False))

    def before_save_checkpoint(self, trainer: "Trainer", checkpoint: dict) -> None:
        checkpoint["meta"]["periodic"] = list(self.written)

    def after_load_checkpoint(self, trainer: "Trainer", checkpoint: dict) -> None:
        self.written = [n for n in checkpoint["meta"].get("periodic", []) if (trainer.work_dir / n).is_file()]

    def save(self, trainer: "Trainer", improved: bool) -> None:
        c, work = trainer.settings.checkpoint, trainer.work_dir
        count = trainer.epoch if trainer.settings.epoch_based else trainer.iter
        name = f"epoch_{trainer.epoch}.pt" if trainer.settings.epoch_based else f"iter_{trainer.iter}.pt"
        periodic = count % c["interval"] == 0 or trainer.finished
        if periodic and name not in self.written:
            self.written.append(name)
        payload = trainer.state()
        written: Path | None = None
        if periodic:
            written = trainer.last_checkpoint = ckpt_io.save(work / name, payload)
            self.prune(work, c.get("max_keep"))
        if c.get("save_last", True):
            _link_or_save(written, work / "last.pt", payload)
            trainer.last_checkpoint = work / "last.pt" if written is None else written
        if improved:
            best_path = work / f"best_{trainer.best['metric'].replace('/', '_')}.pt"
            _link_or_save(written, best_path, payload)
            trainer.best["checkpoint"] = str(best_path)

    def prune(self, work: Path, max_keep: int | None) -> None:
        if not max_keep:
            return
        while len(self.written) > max_keep:
            (work / self.written.pop(0)).unlink(missing_ok=True)


def _link_or_save(existing: Path | None, target: Path, payload: dict) -> None:
    """Make `target` the same file as `existing` (hard link, atomically) or save `payload`."""
    if existing is not None:
        tmp = target.with_name(f".{target.name}.link")
        try:
            tmp.unlink(missing_ok=True)
            os.link(existing, tmp)
            os.replace(tmp, target)
            return
        except OSError:
            tmp.unlink(missing_ok=True)
    ckpt_io.save(target, payload)


HOOKS: dict[str, Any] = {
    "CheckInvalidLoss": CheckInvalidLoss,
    "UnfreezeBackbone": UnfreezeBackbone,
    "TensorBoard": TensorBoard,
}
