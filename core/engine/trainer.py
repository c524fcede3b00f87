"""The Trainer, in parts (detectron2's shape): a loop that counts iterations (an epoch-based
preset is an iteration count with an epoch length), a `TrainStep` that owns AMP, gradient
clipping, gradient accumulation and EMA (`step.py`), and hooks for validation, checkpoints,
the invalid-loss stop and logging (`train_hooks.py`, `logger.py`; log sinks: JSON Lines,
console, TensorBoard). Exact resume: model, optimizer, EMA, scaler, RNG states, loop position
and the data order (the loader skips the batches already seen).

A model is an `nn.Module` with `loss(inputs, samples) -> dict` (keys starting with `loss` are
summed) and `predict(inputs, samples) -> list[Instances]`. Batches are `(inputs, samples)` as
produced by the data collate function (uint8 (B, 3, H, W) tensor, list of DetSample), or a
dict with those keys.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from det.core.engine import checkpoint as ckpt_io
from det.core import dist
from det.core.engine.device import channels_last_is_safe, resolve_device, seed_everything
from det.core.engine.ema import ModelEMA
from det.core.engine.evaluate import run_evaluation
from det.core.engine.hooks import Hook, PipelineSwitchHook
from det.core.engine.logger import ConsoleSink, JsonLinesSink, LoggerHook, TensorBoard, eta, peak_memory_mb
from det.core.engine.optim import build_optimizer
from det.core.engine.schedulers import LRSchedule
from det.core.engine.settings import TrainSettings
from det.core.engine.step import TrainStep, amp_dtype_for, move_samples, parse_losses, split_batch
from det.core.engine.train_hooks import CheckInvalidLoss, CheckpointHook, EvalHook, InvalidLossError
from det.core.errors import ConfigError, DetError
from det.core.fileio import atomic_write_json
from det.core.log import get_logger, make_progress

__all__ = ["InvalidLossError", "Trainer", "move_samples", "parse_losses", "resolve_device", "run_evaluation",
           "seed_everything", "split_batch", "write_metrics"]


class _LossModule(nn.Module):
    """Routes DDP's forward to `model.loss` so gradients are synchronised."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, samples: list) -> dict:
        return self.model.loss(inputs, samples)


def num_classes_of(model: nn.Module) -> int | None:
    """`num_classes` of the model or of its first submodule that declares one."""
    if isinstance(getattr(model, "num_classes", None), int):
        return model.num_classes
    for name, module in model.named_modules():
        if "rpn" in name:  # proposal heads are class-agnostic (num_classes 1)
            continue
        if isinstance(getattr(module, "num_classes", None), int):
            return module.num_classes
    return None


class Trainer:
    """Train `model` on `train_dataset` with the preset's `train` section.

    `loader_cfg` / `val_loader_cfg` are the preset's `data.train` / `data.val` sections (every
    loader key acts: see `det.core.data.loader.build_loader`); `batch_size` and `num_workers`
    override them. The evaluator (optional) has `reset()`, `process(samples, predictions)` and
    `evaluate() -> dict[str, float]` and gathers across ranks itself. Only rank 0 writes files.
    """

    def __init__(self, model: nn.Module, train_cfg: dict, work_dir: str | Path, *, train_dataset: Any,
                 collate_fn: Callable | None, batch_size: int | None = None, num_workers: int | None = None,
                 val_dataset: Any = None, val_collate_fn: Callable | None = None, val_batch_size: int | None = None,
                 val_num_workers: int | None = None, evaluator: Any = None, preset: dict | None = None,
                 classes: Sequence[str] | None = None, device: torch.device | str = "cpu", seed: int = 0,
                 deterministic: bool = False, amp: bool | None = None, auto_scale_lr: bool | None = None,
                 switch_pipeline: list[dict] | None = None, hooks: Sequence[Hook] = (),
                 loader_cfg: dict | None = None, val_loader_cfg: dict | None = None):
        self.log = get_logger()
        self.settings = s = TrainSettings.from_cfg(train_cfg)
        self.work_dir = Path(work_dir)
        self.device = torch.device(device) if isinstance(device, str) else device
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.preset = preset or {}
        self.classes = list(classes) if classes is not None else list(getattr(train_dataset, "classes", []) or [])
        self.seed, self.deterministic = int(seed), deterministic
        self._check_classes(model)
        self.train_dataset, self.collate_fn = train_dataset, collate_fn
        self.loader_cfg = dict(loader_cfg or {})
        self._train_override = {"batch_size": batch_size, "num_workers": num_workers if loader_cfg is not None or
                                num_workers is not None else 0}
        self.val_dataset, self.val_collate_fn = val_dataset, val_collate_fn or collate_fn
        self.val_loader_cfg = dict(val_loader_cfg or {})
        self._val_override = {"batch_size": val_batch_size, "num_workers": val_num_workers if val_loader_cfg is not None
                              or val_num_workers is not None else 0}
        self._val_loader = None
        self.evaluator = evaluator
        self.loader = self._build_loader()
        self.batch_size = self.loader.batch_sampler.batch_size
        self.iters_per_epoch = len(self.loader.batch_sampler)
        if self.iters_per_epoch == 0:
            raise DetError("data.train: the training set is empty")
        self.max_iters = s.max_iters if not s.epoch_based else s.max_epochs * self.iters_per_epoch
        self._check_accumulate()
        self._setup_model(model, amp, auto_scale_lr)
        self.epoch = 0          # completed epochs
        self.iter = 0           # completed iterations (global)
        self.inner_iter = 0     # completed iterations in the current epoch
        self.epoch_ended = self.finished = self.improved = False
        self.best: dict[str, Any] = {}
        self.last_metrics: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self._log_path = self.work_dir / "log.jsonl"
        self.sinks: list[Any] = [JsonLinesSink(self._log_path), ConsoleSink()]
        self.hooks: list[Hook] = []
        self._setup_hooks(switch_pipeline, hooks)
        self._progress = self._task = None
        self._t_start, self._iters_at_start = 0.0, 0

    # ---------------------------------------------------------------- set-up
    def _build_loader(self) -> Any:
        from det.core.data.loader import build_loader

        return build_loader(self.train_dataset, self.loader_cfg, train=True, seed=self.seed, rank=self.rank,
                            world_size=self.world_size, collate_fn=self.collate_fn, device_type=self.device.type,
                            **self._train_override)

    def rebuild_loader(self) -> None:
        """A fresh training loader (new workers): after the dataset's pipeline changed."""
        self.loader = self._build_loader()

    def _check_accumulate(self) -> None:
        s, n = self.settings, self.settings.accumulate
        if n > 1 and not s.epoch_based:
            for key, value in (("checkpoint.interval", s.checkpoint["interval"]), ("val_interval", s.val_interval)):
                if value % n and value < self.max_iters:
                    raise ConfigError(f"train.{key}: {value} is not a multiple of train.accumulate ({n}); a "
                                      "checkpoint between optimizer steps could not resume exactly")

    def _setup_model(self, model: nn.Module, amp: bool | None, auto_scale_lr: bool | None) -> None:
        s = self.settings
        model = model.to(self.device)
        self.channels_last = s.use_channels_last(self.device.type)
        if self.channels_last and self.device.type == "cpu":
            self.channels_last = channels_last_is_safe(model, self.log)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if s.sync_bn and self.world_size > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.lr_scale = self._lr_scale(auto_scale_lr)
        self.optimizer = build_optimizer(model, s.optimizer, s.paramwise, self.lr_scale)
        self.schedule = LRSchedule(s.schedulers, self.iters_per_epoch, s.max_epochs, self.max_iters, s.epoch_based)
        self.ema = ModelEMA(model, **s.ema) if s.ema else None
        self.train_module: nn.Module = _LossModule(model)
        if self.world_size > 1:
            self.train_module = nn.parallel.DistributedDataParallel(
                self.train_module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=s.find_unused_parameters)
        if s.compile:
            self.train_module = _compiled(self.train_module, self.log)
        self.step = TrainStep(model, self.train_module, self.optimizer, s, self.device,
                              amp_dtype_for(s, self.device, amp), self.ema, self.channels_last)

    def _lr_scale(self, auto_scale_lr: bool | None) -> float:
        cfg = self.settings.auto_scale_lr
        if not (cfg.get("enable", False) if auto_scale_lr is None else auto_scale_lr):
            return 1.0
        base = cfg.get("base_batch_size")
        if base is None:
            raise ConfigError("train.auto_scale_lr.base_batch_size: required with --auto-scale-lr")
        total = self.batch_size * self.world_size * self.settings.accumulate
        self.log.info(f"auto_scale_lr: total batch {total} / base {base} -> lr x {total / base:g}")
        return total / base

    def _setup_hooks(self, switch_pipeline: list[dict] | None, hooks: Sequence[Hook]) -> None:
        s = self.settings
        from_preset = s.build_hooks()
        if not any(isinstance(h, CheckInvalidLoss) for h in from_preset):
            self.register_hook(CheckInvalidLoss())
        for hook in (LoggerHook(s.log_interval), EvalHook(), CheckpointHook(), *from_preset, *hooks):
            self.register_hook(hook)
        if switch_pipeline is not None and s.switch_epoch is not None:
            self.register_hook(PipelineSwitchHook(s.switch_epoch, switch_pipeline))
        elif switch_pipeline is not None or s.switch_epoch is not None:
            raise ConfigError("train.switch_epoch and data.train.switch_pipeline go together; one is missing")
        if s.tensorboard and not any(isinstance(h, TensorBoard) for h in self.hooks):
            self.register_hook(TensorBoard())

    # ---------------------------------------------------------------- plumbing
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def unwrapped(self) -> nn.Module:
        return self.model

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return self.step.amp_dtype

    @property
    def scaler(self) -> Any:
        return self.step.scaler

    def register_hook(self, hook: Hook) -> None:
        self.hooks.append(hook)
        self.hooks.sort(key=lambda h: h.priority)

    def call(self, point: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    def _check_classes(self, model: nn.Module) -> None:
        n = num_classes_of(model)
        if n is not None and self.classes and n != len(self.classes):
            raise ConfigError(f"model num_classes is {n} but the dataset has {len(self.classes)} classes "
                              f"({', '.join(self.classes[:6])}{', ...' if len(self.classes) > 6 else ''}); "
                              f"set the head's num_classes to {len(self.classes)}")

    def write_record(self, record: dict[str, Any]) -> None:
        """Hand a log record to every sink (rank 0)."""
        if self.is_main:
            for sink in self.sinks:
                sink.write(self, record)

    def progress_visible(self) -> bool:
        return self._progress is not None and not self._progress.disable

    def eta(self) -> str:
        return eta(self._t_start, self.iter - self._iters_at_start, self.max_iters - self.iter)

    # ---------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        weights = self.ema.module.state_dict() if self.ema else self.model.state_dict()
        payload: dict[str, Any] = {
            "meta": {
                "epoch": self.epoch, "iter": self.iter, "inner_iter": self.inner_iter, "classes": list(self.classes),
                "det_version": _version(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "seed": self.seed,
                "world_size": self.world_size, "iters_per_epoch": self.iters_per_epoch,
            },
            "preset": self.preset,
            "state_dict": weights,
            "optimizer": self.optimizer.state_dict(),
            "rng": ckpt_io.rng_state(),
            "best": dict(self.best),
        }
        if self.ema:
            payload["raw_state_dict"] = self.model.state_dict()
            payload["ema"] = {"steps": self.ema.steps}
        if self.scaler is not None:
            payload["scaler"] = self.scaler.state_dict()
        self.call("before_save_checkpoint", payload)
        return payload

    def resume(self, path: str | Path) -> None:
        """Restore model, optimizer, EMA, scaler, RNG states, best metric and loop position."""
        from det.core.fileio import load_checkpoint

        ckpt = load_checkpoint(path)
        for key in ("meta", "optimizer", "rng"):
            if key not in ckpt:
                raise DetError(f"{path}: not a resumable det checkpoint (no '{key}'); use --load-from for weights only")
        meta = ckpt["meta"]
        if meta.get("iters_per_epoch") not in (None, self.iters_per_epoch):
            raise DetError(f"{path}: saved with {meta['iters_per_epoch']} iterations per epoch, now "
                           f"{self.iters_per_epoch} (dataset, batch size or number of processes changed)")
        if meta.get("world_size", 1) != self.world_size:
            self.log.warning(f"{path}: saved with {meta.get('world_size')} processes, resuming with {self.world_size}")
        self.call("before_load_checkpoint", ckpt)
        # a checkpoint of another architecture: one line naming the first mismatches and their count
        ckpt_io.fit_weights(self.model, ckpt.get("raw_state_dict", ckpt["state_dict"]), path, "this run's model")
        if self.ema is not None:
            ckpt_io.fit_weights(self.ema.module, ckpt["state_dict"], path, "this run's model (EMA)")
            self.ema.steps = int(ckpt.get("ema", {}).get("steps", meta["iter"]))
        configured = [(g["initial_lr"], g["weight_decay"]) for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for group, (lr, wd) in zip(self.optimizer.param_groups, configured):
            group["initial_lr"], group["weight_decay"] = lr, wd  # the preset, not the checkpoint, sets these
        if self.scaler is not None and "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        ckpt_io.set_rng_state(ckpt["rng"])
        self.epoch, self.iter, self.inner_iter = int(meta["epoch"]), int(meta["iter"]), int(meta.get("inner_iter", 0))
        self.best = dict(ckpt.get("best", {}))
        self.last_checkpoint = Path(path)
        self.call("after_load_checkpoint", ckpt)
        self.log.info(f"resumed from {path} at epoch {self.epoch}, iteration {self.iter}")
        if self.is_main:
            _truncate_log(self._log_path, self.iter)

    # ---------------------------------------------------------------- training
    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Run training to the end; returns {'metrics': last validation metrics, 'best': ...}."""
        if self.is_main:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.resume(resume)
        elif self.is_main and self._log_path.exists():
            self._log_path.unlink()
        self._announce()
        self.finished = self.iter >= self.max_iters
        self.optimizer.zero_grad(set_to_none=True)
        self.call("before_run")
        self._t_start, self._iters_at_start = time.perf_counter(), self.iter
        self._progress = make_progress() if self.is_main else None
        # Denormals made a frozen-BN step ~10x slower on CPU. The flag is process-global, so it is
        # switched back off after the run (callers in the same process may rely on IEEE subnormals).
        flushing = self.device.type == "cpu" and torch.set_flush_denormal(True)
        try:
            if self._progress is not None:
                self._progress.start()
                self._task = self._progress.add_task("train", total=self.max_iters, completed=self.iter, info="")
            self._loop()
        finally:
            if flushing:
                torch.set_flush_denormal(False)
            if self._progress is not None:
                self._progress.stop()
            self._progress = None
        self.call("after_run")
        self.log.info(f"peak memory {peak_memory_mb(self.device)} MB; "
                      f"{time.perf_counter() - self._t_start:.1f} s for {self.iter - self._iters_at_start} iterations")
        return {"metrics": self.last_metrics, "best": self.best, "epoch": self.epoch, "iter": self.iter}

    def _announce(self) -> None:
        n_params = sum(p.numel() for p in self.model.parameters())
        world = f" x {self.world_size}" if self.world_size > 1 else ""
        acc = f" x {self.settings.accumulate} accumulated" if self.settings.accumulate > 1 else ""
        amp = f", amp {str(self.amp_dtype).split('.')[-1]}" if self.amp_dtype else ""
        self.log.info(f"training {type(self.model).__name__} ({n_params / 1e6:.2f} M parameters) on {self.device}"
                      f"{world + ' processes' if world else ''}: {self.iters_per_epoch} iterations/epoch, "
                      f"{self.max_iters} in all, batch {self.batch_size}{world}{acc}{amp}")

    def _loop(self) -> None:
        """Iterations until max_iters; each epoch's loader starts where the last run stopped."""
        batches = None
        while not self.finished:
            if batches is None:
                self.call("before_epoch")
                self.model.train()
                self.loader.set_epoch(self.epoch, self.inner_iter)
                batches = iter(self.loader)
            t_data = time.perf_counter()
            batch = next(batches)
            self.run_iter(batch, time.perf_counter() - t_data)
            if self.epoch_ended:
                batches = None

    def _update_due(self) -> bool:
        n = self.settings.accumulate
        if self.settings.epoch_based:
            return (self.inner_iter + 1) % n == 0 or self.inner_iter + 1 == self.iters_per_epoch
        return (self.iter + 1) % n == 0 or self.iter + 1 == self.max_iters

    def run_iter(self, batch: Any, data_time: float = 0.0) -> dict[str, Any]:
        """One iteration: step, counters, then after_iter / after_epoch / after_step hooks."""
        self.call("before_iter")
        t_iter = time.perf_counter()
        self.schedule.apply(self.optimizer, self.iter)
        outputs = self.step(batch, self._update_due(), check=lambda out: self.call("after_loss", out))
        self.iter += 1
        self.inner_iter += 1
        outputs["time"] = time.perf_counter() - t_iter + data_time
        outputs["data_time"] = data_time
        self.call("after_iter", outputs)
        self._show(outputs)
        self.epoch_ended = self.inner_iter == self.iters_per_epoch
        if self.epoch_ended:
            self.epoch += 1
            self.inner_iter = 0
        self.finished = self.iter >= self.max_iters
        if self.epoch_ended:
            self.call("after_epoch")
        self.call("after_step")
        return outputs

    def _show(self, outputs: dict[str, Any]) -> None:
        if self._progress is None or self._task is None:
            return
        info = f"loss {outputs['loss']:.4f} lr {self.optimizer.param_groups[0]['lr']:.2e}"
        if self.settings.epoch_based:
            info = f"epoch {self.epoch + 1}/{self.settings.max_epochs} " + info
        self._progress.update(self._task, completed=self.iter, info=info)

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Evaluate the EMA model (or the model) on the validation set, gathered over ranks."""
        from det.core.data.loader import build_loader

        self.call("before_val")
        if self._val_loader is None:
            self._val_loader = build_loader(self.val_dataset, self.val_loader_cfg, train=False, rank=self.rank,
                                            world_size=self.world_size, collate_fn=self.val_collate_fn,
                                            device_type=self.device.type, **self._val_override)
        model = self.ema.module if self.ema is not None else self.model
        was_training = model.training
        model.eval()
        metrics = run_evaluation(model, self.val_dataset, self.val_collate_fn, self.evaluator, self.device,
                                 amp_dtype=self.amp_dtype, desc="val", loader=self._val_loader)
        model.train(was_training)
        record = {**metrics, "epoch": self.epoch, "iter": self.iter,
                  "step": self.epoch if self.settings.epoch_based else self.iter, "mode": "val"}
        self.write_record(record)
        if self.is_main:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                              if isinstance(v, float) and "/" in k and "_precision" not in k)
            where = f"epoch {self.epoch}" if self.settings.epoch_based else f"iteration {self.iter}"
            self.log.info(f"validation at {where}: {shown}")
        self.call("after_val", metrics)
        return metrics


def _compiled(module: nn.Module, log: Any) -> nn.Module:
    """`train.compile: true`: the loss forward through torch.compile where that works here;
    where it does not (no compiler toolchain, an unsupported op), training runs eagerly and
    the log says why."""
    try:
        return _CompiledOrEager(module, torch.compile(module), log)
    except Exception as exc:  # noqa: BLE001 - any backend failure means: run eagerly, and say so
        log.warning(f"train.compile: torch.compile is not available ({type(exc).__name__}: {exc}); training eagerly")
        return module


class _CompiledOrEager(nn.Module):
    """Calls the compiled module; if the first call fails to compile, falls back to eager."""

    def __init__(self, eager: nn.Module, compiled: Any, log: Any) -> None:
        super().__init__()
        self.eager, self._compiled, self._log, self.state = eager, compiled, log, "untried"

    def forward(self, *args: Any) -> Any:
        if self.state == "eager":
            return self.eager(*args)
        try:
            out = self._compiled(*args)
        except Exception as exc:  # noqa: BLE001 - compiler errors come in many types
            if self.state == "compiled":
                raise
            self.state = "eager"
            self._log.warning(f"train.compile: torch.compile failed here ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}); training eagerly")
            return self.eager(*args)
        if self.state == "untried":
            self.state = "compiled"
            self._log.info("train.compile: the training forward runs through torch.compile")
        return out


def _truncate_log(path: Path, step: int) -> None:
    """Drop training records logged after the resumed iteration (written before a crash)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("mode") == "val" or rec.get("step", 0) <= step:
            if rec.get("mode") == "val" and rec.get("iter", 0) > step:
                continue
            keep.append(line)
    from det.core.fileio import atomic_write_text

    atomic_write_text(path, "".join(k + "\n" for k in keep))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("det")
    except Exception:  # noqa: BLE001 - metadata missing in odd installs
        return "unknown"


def write_metrics(path: Path, result: dict) -> None:
    atomic_write_json(path, result, indent=2)
