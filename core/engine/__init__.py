"""Training engine: Trainer, optimizers, LR schedules, EMA, checkpoints, hooks, distributed."""
from det.core.engine.hooks import Hook
from det.core.engine.trainer import InvalidLossError, Trainer, resolve_device, run_evaluation, seed_everything

__all__ = ["Hook", "InvalidLossError", "Trainer", "resolve_device", "run_evaluation", "seed_everything"]
