"""Training engine: Trainer, optimizers, LR schedules, EMA, checkpoints, hooks, distributed."""
from det.core.engine.device import resolve_device, seed_everything
from det.core.engine.evaluate import run_evaluation
from det.core.engine.hooks import Hook
from det.core.engine.train_hooks import InvalidLossError
from det.core.engine.trainer import Trainer

__all__ = ["Hook", "InvalidLossError", "Trainer", "resolve_device", "run_evaluation", "seed_everything"]
