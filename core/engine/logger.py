"""Training logs: a hook that averages iteration outputs over `train.log_interval` and hands
each record to the trainer's sinks (JSON Lines file, console line, TensorBoard when installed)."""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from det.core.engine.hooks import Hook

if TYPE_CHECKING:
    from det.core.engine.trainer import Trainer


def peak_memory_mb(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device) / 2**20)
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class JsonLinesSink:
    """Appends each record as one JSON line (`WORK_DIR/log.jsonl`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, trainer: "Trainer", record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def close(self) -> None: ...


class ConsoleSink:
    """One log line per training record while no progress bar is shown (logs, non-TTY)."""

    def write(self, trainer: "Trainer", rec: dict[str, Any]) -> None:
        if rec.get("mode") != "train" or trainer.progress_visible():
            return
        losses = " ".join(f"{k} {v:.4f}" for k, v in rec.items() if k.startswith("loss"))
        s = trainer.settings
        where = (f"epoch {rec['epoch']}/{s.max_epochs} [{trainer.inner_iter}/{trainer.iters_per_epoch}]"
                 if s.epoch_based else f"iter [{trainer.iter}/{trainer.max_iters}]")
        trainer.log.info(f"{where} lr {rec['lr']:.3e} {losses} time {rec.get('time', 0):.3f} "
                         f"data_time {rec.get('data_time', 0):.3f} memory {rec['memory']}MB eta {trainer.eta()}")

    def close(self) -> None: ...


class TensorBoardSink:
    """Every numeric entry of a record as a scalar at its `step`."""

    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir)

    def write(self, trainer: "Trainer", record: dict[str, Any]) -> None:
        step = int(record.get("step", trainer.iter))
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("step", "epoch", "iter"):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class LoggerHook(Hook):
    """Averages numeric iteration outputs and writes a training record every `log_interval`
    iterations, at each epoch end and at the last iteration."""

    priority = 80

    def __init__(self, interval: int) -> None:
        self.interval = int(interval)
        self.window: dict[str, list[float]] = {}

    def after_iter(self, trainer: "Trainer", outputs: dict[str, Any]) -> None:
        for key, value in outputs.items():
            if isinstance(value, (int, float)):
                self.window.setdefault(key, []).append(float(value))
        epoch_end = trainer.inner_iter == trainer.iters_per_epoch
        if trainer.inner_iter % self.interval == 0 or epoch_end or trainer.iter >= trainer.max_iters:
            self.flush(trainer)

    def flush(self, trainer: "Trainer") -> None:
        if not self.window:
            return
        rec: dict[str, Any] = {"lr": trainer.optimizer.param_groups[0]["lr"]}
        rec.update({key: float(np.mean(values)) for key, values in self.window.items()})
        epoch_based = trainer.settings.epoch_based
        rec.update({"epoch": trainer.epoch + 1 if epoch_based else (trainer.iter - 1) // trainer.iters_per_epoch + 1,
                    "iter": trainer.inner_iter if epoch_based else trainer.iter,
                    "memory": peak_memory_mb(trainer.device), "step": trainer.iter, "mode": "train"})
        self.window = {}
        trainer.write_record(rec)


class TensorBoard(Hook):
    """Adds a TensorBoard sink writing to `log_dir` (default `WORK_DIR/tensorboard`); says so
    and logs to log.jsonl only when the tensorboard package is missing."""

    priority = 90

    def __init__(self, log_dir: str | None = None) -> None:
        self.log_dir = log_dir
        self.sink: TensorBoardSink | None = None

    def before_run(self, trainer: "Trainer") -> None:
        if not trainer.is_main:
            return
        try:
            self.sink = TensorBoardSink(self.log_dir or str(trainer.work_dir / "tensorboard"))
        except ImportError:
            trainer.log.warning("TensorBoard: the tensorboard package is not installed; logging to log.jsonl only")
            return
        trainer.sinks.append(self.sink)

    def after_run(self, trainer: "Trainer") -> None:
        if self.sink is not None:
            self.sink.close()
            trainer.sinks.remove(self.sink)
            self.sink = None


def eta(start: float, done: int, remaining: int) -> str:
    """h:mm:ss left at the pace so far ('?' before the first iteration)."""
    if done <= 0:
        return "?"
    secs = int((time.perf_counter() - start) / done * remaining)
    return f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
