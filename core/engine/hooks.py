"""Hooks: objects called by the Trainer at fixed points. Subclass `Hook` and override any of
the methods; hooks run in ascending `priority` (lower first), ties in insertion order.

Points: before_run, after_run, before_epoch, after_epoch, before_iter, after_loss (the reduced
losses of an iteration before its gradients are applied), after_iter, after_step (after the
loop counters advanced, epoch end included: validation and checkpoints happen here), before_val,
after_val, before_save_checkpoint (may add entries to the checkpoint dict),
before_load_checkpoint and after_load_checkpoint (on resume).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from det.core.engine.trainer import Trainer


class Hook:
    priority: int = 50

    def before_run(self, trainer: "Trainer") -> None: ...
    def after_run(self, trainer: "Trainer") -> None: ...
    def before_epoch(self, trainer: "Trainer") -> None: ...
    def after_epoch(self, trainer: "Trainer") -> None: ...
    def before_iter(self, trainer: "Trainer") -> None: ...
    def after_loss(self, trainer: "Trainer", outputs: dict[str, Any]) -> None: ...
    def after_iter(self, trainer: "Trainer", outputs: dict[str, Any]) -> None: ...
    def after_step(self, trainer: "Trainer") -> None: ...
    def before_val(self, trainer: "Trainer") -> None: ...
    def after_val(self, trainer: "Trainer", metrics: dict[str, float]) -> None: ...
    def before_save_checkpoint(self, trainer: "Trainer", checkpoint: dict) -> None: ...
    def before_load_checkpoint(self, trainer: "Trainer", checkpoint: dict) -> None: ...
    def after_load_checkpoint(self, trainer: "Trainer", checkpoint: dict) -> None: ...


class PipelineSwitchHook(Hook):
    """Replace the training pipeline from epoch `switch_epoch` (0-based) on: RTMDet's second
    stage drops Mosaic/MixUp for the last epochs. Also applied when resuming past that epoch."""

    priority = 48

    def __init__(self, switch_epoch: int, pipeline: list[dict]):
        self.switch_epoch = int(switch_epoch)
        self.pipeline = pipeline
        self.switched = False

    def before_epoch(self, trainer: "Trainer") -> None:
        if not self.switched and trainer.epoch >= self.switch_epoch:
            dataset = trainer.train_dataset
            if not hasattr(dataset, "set_pipeline"):
                from det.core.errors import ConfigError

                raise ConfigError(f"data.train.switch_pipeline: dataset {type(dataset).__name__} cannot change its pipeline")
            dataset.set_pipeline(self.pipeline)
            trainer.rebuild_loader()  # persistent workers hold copies of the old pipeline
            self.switched = True
            trainer.log.info(f"epoch {trainer.epoch + 1}: switched to data.train.switch_pipeline "
                             f"({len(self.pipeline)} transforms)")
