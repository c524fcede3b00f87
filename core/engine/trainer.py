"""The Trainer: epoch- or iteration-based loops, validation every N, AMP, gradient clipping, EMA,
checkpoints with exact resume, invalid-loss stop, JSON Lines log, progress bar, DDP.

A model is an `nn.Module` with `loss(inputs, samples) -> dict` (keys starting with `loss` are
summed) and `predict(inputs, samples) -> list[Instances]`. Batches are `(inputs, samples)` as
produced by the data collate function (uint8 (B, 3, H, W) tensor, list of DetSample), or a
dict with those keys.
"""
from __future__ import annotations

import json
import math
import os
import random
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader

from det.core.engine import checkpoint as ckpt_io
from det.core.engine import dist
from det.core.engine.ema import ModelEMA
from det.core.engine.hooks import Hook, PipelineSwitchHook, TensorBoardHook
from det.core.engine.optim import build_optimizer
from det.core.engine.sampler import EpochSampler, ShardSampler
from det.core.engine.schedulers import LRSchedule
from det.core.engine.settings import TrainSettings
from det.core.errors import ConfigError, DetError
from det.core.fileio import atomic_write_json
from det.core.log import get_logger, make_progress


class InvalidLossError(DetError):
    """Training produced a NaN/inf loss; exit code 3 (the last good checkpoint is kept)."""

    exit_code = 3


class _LossModule(nn.Module):
    """Routes DDP's forward to `model.loss` so gradients are synchronised."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, samples: list) -> dict:
        return self.model.loss(inputs, samples)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA (this process's local rank) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist.wanted_world_size() > 1:
        name = f"cuda:{dist.local_rank()}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DetError(f"--device {name}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DetError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DetError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type != "cpu":
        raise DetError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    return device


def split_batch(batch: Any) -> tuple[torch.Tensor, list]:
    if isinstance(batch, dict):
        return batch["inputs"], batch["samples"]
    inputs, samples = batch
    return inputs, samples


def move_samples(samples: list, device: torch.device) -> list:
    """Ground truth to the device (DetSample.gt are Instances)."""
    if device.type == "cpu":
        return samples
    for s in samples:
        if getattr(s, "gt", None) is not None and hasattr(s.gt, "to"):
            s.gt = s.gt.to(device)
    return samples


def parse_losses(losses: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum every entry whose key starts with 'loss' (lists are summed first)."""
    logged: dict[str, torch.Tensor] = {}
    for key, value in losses.items():
        if isinstance(value, torch.Tensor):
            logged[key] = value.mean() if value.dim() else value
        elif isinstance(value, (list, tuple)):
            logged[key] = sum(v.mean() for v in value)
        else:
            logged[key] = torch.as_tensor(float(value))
    parts = [v for k, v in logged.items() if k.startswith("loss")]
    if not parts:
        raise DetError(f"model.loss returned no 'loss*' entries (got {sorted(losses)})")
    total = sum(parts)
    return total, logged


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


def peak_memory_mb(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device) / 2**20)
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class Trainer:
    """Train `model` on `train_dataset` with the preset's `train` section.

    `collate_fn` builds a batch from dataset items. The evaluator (optional) has
    `reset()`, `process(samples, predictions)` and `evaluate() -> dict[str, float]` and gathers
    across ranks itself. Only rank 0 writes files.
    """

    def __init__(
        self,
        model: nn.Module,
        train_cfg: dict,
        work_dir: str | Path,
        *,
        train_dataset: Any,
        collate_fn: Callable | None,
        batch_size: int,
        num_workers: int = 0,
        val_dataset: Any = None,
        val_collate_fn: Callable | None = None,
        val_batch_size: int = 1,
        val_num_workers: int = 0,
        evaluator: Any = None,
        preset: dict | None = None,
        classes: Sequence[str] | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        deterministic: bool = False,
        amp: bool | None = None,
        auto_scale_lr: bool | None = None,
        switch_pipeline: list[dict] | None = None,
        hooks: Sequence[Hook] = (),
    ):
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
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.val_dataset, self.val_collate_fn = val_dataset, val_collate_fn or collate_fn
        self.val_batch_size, self.val_num_workers = int(val_batch_size), int(val_num_workers)
        self.evaluator = evaluator
        self.sampler = EpochSampler(len(train_dataset), shuffle=True, seed=self.seed, rank=self.rank,
                                    world_size=self.world_size)
        self.iters_per_epoch = math.ceil(self.sampler.num_samples / self.batch_size)
        if self.iters_per_epoch == 0:
            raise DetError("data.train: the training set is empty")
        self.max_iters = s.max_iters if not s.epoch_based else s.max_epochs * self.iters_per_epoch

        model = model.to(self.device)
        self.channels_last = s.use_channels_last(self.device.type)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if s.sync_bn and self.world_size > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        scale_cfg = s.auto_scale_lr
        enable_scale = scale_cfg.get("enable", False) if auto_scale_lr is None else auto_scale_lr
        self.lr_scale = 1.0
        if enable_scale:
            base = scale_cfg.get("base_batch_size")
            if base is None:
                raise ConfigError("train.auto_scale_lr.base_batch_size: required with --auto-scale-lr")
            self.lr_scale = self.batch_size * self.world_size / base
            self.log.info(f"auto_scale_lr: total batch {self.batch_size * self.world_size} / base {base} "
                          f"-> lr x {self.lr_scale:g}")
        self.optimizer = build_optimizer(model, s.optimizer, s.paramwise, self.lr_scale)
        self.schedule = LRSchedule(s.schedulers, self.iters_per_epoch, s.max_epochs, self.max_iters, s.epoch_based)
        self.ema = ModelEMA(model, **s.ema) if s.ema else None

        amp_on = s.use_amp(self.device) if amp is None else amp
        dtype = s.amp.get("dtype", "auto")
        if dtype == "auto":
            dtype = "bf16" if self.device.type == "cpu" or s.amp.get("enabled") == "auto" else "fp16"
        self.amp_dtype = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                          "float16": torch.float16}[dtype] if amp_on else None
        if self.amp_dtype == torch.float16 and self.device.type == "cpu":
            raise ConfigError("train.amp.dtype: fp16 autocast is CUDA-only; use bf16 on CPU")
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

        self.train_module: nn.Module = _LossModule(model)
        if self.world_size > 1:
            self.train_module = nn.parallel.DistributedDataParallel(
                self.train_module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=s.find_unused_parameters)

        self.epoch = 0          # completed epochs
        self.iter = 0           # completed iterations (global)
        self.inner_iter = 0     # completed iterations in the current epoch
        self.best: dict[str, Any] = {}
        self.last_metrics: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self.hooks: list[Hook] = []
        if switch_pipeline is not None and s.switch_epoch is not None:
            self.register_hook(PipelineSwitchHook(s.switch_epoch, switch_pipeline))
        elif switch_pipeline is not None or s.switch_epoch is not None:
            raise ConfigError("train.switch_epoch and data.train.switch_pipeline go together; one is missing")
        if s.tensorboard and self.is_main:
            try:
                self.register_hook(TensorBoardHook(str(self.work_dir / "tensorboard")))
            except ImportError:
                self.log.warning("train.tensorboard: the tensorboard package is not installed; logging to log.jsonl only")
        for hook in hooks:
            self.register_hook(hook)
        self._log_path = self.work_dir / "log.jsonl"
        self._window: dict[str, list[float]] = {}
        self._progress = None
        self._task = None
        self._t_start = 0.0
        self._iters_at_start = 0

    # ---------------------------------------------------------------- plumbing
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def unwrapped(self) -> nn.Module:
        return self.model

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

    def _loader(self, epoch: int, skip_batches: int = 0) -> DataLoader:
        self.sampler.set_epoch(epoch, skip_batches * self.batch_size)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7919 + self.rank)
        return DataLoader(self.train_dataset, batch_sampler=BatchSampler(self.sampler, self.batch_size, drop_last=False),
                          collate_fn=self.collate_fn, num_workers=self.num_workers, generator=g,
                          worker_init_fn=_worker_init() if self.num_workers else None,
                          pin_memory=self.device.type == "cuda")

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

    def save_checkpoint(self, metric_improved: bool) -> None:
        """`epoch_N.pt`/`iter_N.pt` at the interval, `last.pt` always, `best_<metric>.pt` on
        improvement; older periodic files beyond `max_keep` are removed after the new one is
        complete."""
        if not self.is_main:
            return
        c = self.settings.checkpoint
        payload = self.state()
        count = self.epoch if self.settings.epoch_based else self.iter
        periodic = count % c["interval"] == 0 or self._finished
        name = f"epoch_{self.epoch}.pt" if self.settings.epoch_based else f"iter_{self.iter}.pt"
        written: Path | None = None
        if periodic:
            written = ckpt_io.save(self.work_dir / name, payload)
            self.last_checkpoint = written
            self._prune(c.get("max_keep"))
        if c.get("save_last", True):
            _link_or_save(written, self.work_dir / "last.pt", payload)
            self.last_checkpoint = self.work_dir / "last.pt" if written is None else written
        if metric_improved:
            best_path = self.work_dir / f"best_{self.best['metric'].replace('/', '_')}.pt"
            _link_or_save(written, best_path, payload)
            self.best["checkpoint"] = str(best_path)

    def _prune(self, max_keep: int | None) -> None:
        if not max_keep:
            return
        prefix = "epoch" if self.settings.epoch_based else "iter"
        found = sorted((int(m.group(2)), p) for p in self.work_dir.glob(f"{prefix}_*.pt")
                       if (m := ckpt_io.EPOCH_RE.match(p.name)) and m.group(1) == prefix)
        for _n, path in found[:-max_keep]:
            path.unlink(missing_ok=True)

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
        raw = ckpt.get("raw_state_dict", ckpt["state_dict"])
        self.model.load_state_dict(raw)
        if self.ema is not None:
            self.ema.module.load_state_dict(ckpt["state_dict"])
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

    # ---------------------------------------------------------------- logging
    def write_record(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        for hook in self.hooks:
            if isinstance(hook, TensorBoardHook):
                hook.log(record, int(record.get("step", self.iter)))

    def _flush_window(self) -> None:
        if not self._window:
            return
        rec: dict[str, Any] = {"lr": self.optimizer.param_groups[0]["lr"]}
        for key, values in self._window.items():
            rec[key] = float(np.mean(values))
        rec.update({"epoch": self.epoch + 1 if self.settings.epoch_based else (self.iter - 1) // self.iters_per_epoch + 1,
                    "iter": self.inner_iter if self.settings.epoch_based else self.iter,
                    "memory": peak_memory_mb(self.device), "step": self.iter, "mode": "train"})
        self._window = {}
        self.write_record(rec)
        if self.is_main and not self._progress_visible():
            eta = self._eta()
            losses = " ".join(f"{k} {v:.4f}" for k, v in rec.items() if k.startswith("loss"))
            where = (f"epoch {rec['epoch']}/{self.settings.max_epochs} [{self.inner_iter}/{self.iters_per_epoch}]"
                     if self.settings.epoch_based else f"iter [{self.iter}/{self.max_iters}]")
            self.log.info(f"{where} lr {rec['lr']:.3e} {losses} time {rec.get('time', 0):.3f} "
                          f"data_time {rec.get('data_time', 0):.3f} memory {rec['memory']}MB eta {eta}")

    def _eta(self) -> str:
        done = self.iter - self._iters_at_start
        if done <= 0:
            return "?"
        per = (time.perf_counter() - self._t_start) / done
        secs = int(per * (self.max_iters - self.iter))
        return f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"

    def _progress_visible(self) -> bool:
        return self._progress is not None and not self._progress.disable

    # ---------------------------------------------------------------- training
    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Run training to the end; returns {'metrics': last validation metrics, 'best': ...}."""
        s = self.settings
        if self.is_main:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.resume(resume)
        elif self.is_main and self._log_path.exists():
            self._log_path.unlink()
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log.info(f"training {type(self.model).__name__} ({n_params / 1e6:.2f} M parameters) on {self.device}"
                      f"{f' x {self.world_size} processes' if self.world_size > 1 else ''}: "
                      f"{self.iters_per_epoch} iterations/epoch, {self.max_iters} in all, batch "
                      f"{self.batch_size}{f' x {self.world_size}' if self.world_size > 1 else ''}"
                      f"{', amp ' + str(self.amp_dtype).split('.')[-1] if self.amp_dtype else ''}")
        self._finished = self.iter >= self.max_iters
        self.call("before_run")
        self._t_start, self._iters_at_start = time.perf_counter(), self.iter
        progress = make_progress() if self.is_main else None
        self._progress = progress
        # Denormals made a frozen-BN step ~10x slower on CPU. The flag is process-global, so it is
        # switched back off after the run (callers in the same process may rely on IEEE subnormals).
        flushing = self.device.type == "cpu" and torch.set_flush_denormal(True)
        try:
            if progress is not None:
                progress.start()
                self._task = progress.add_task("train", total=self.max_iters, completed=self.iter, info="")
            while not self._finished:
                self._run_epoch()
        finally:
            if flushing:
                torch.set_flush_denormal(False)
            if progress is not None:
                progress.stop()
            self._progress = None
        self.call("after_run")
        self.log.info(f"peak memory {peak_memory_mb(self.device)} MB; "
                      f"{time.perf_counter() - self._t_start:.1f} s for {self.iter - self._iters_at_start} iterations")
        return {"metrics": self.last_metrics, "best": self.best, "epoch": self.epoch, "iter": self.iter}

    def _run_epoch(self) -> None:
        s = self.settings
        self.call("before_epoch")
        loader = self._loader(self.epoch, self.inner_iter)
        self.model.train()
        t_data = time.perf_counter()
        for batch in loader:
            data_time = time.perf_counter() - t_data
            self.call("before_iter")
            t_iter = time.perf_counter()
            outputs = self._train_step(batch)
            self.iter += 1
            self.inner_iter += 1
            outputs["time"] = time.perf_counter() - t_iter + data_time
            outputs["data_time"] = data_time
            for key, value in outputs.items():
                if isinstance(value, (int, float)):
                    self._window.setdefault(key, []).append(float(value))
            self.call("after_iter", outputs)
            if self._progress is not None and self._task is not None:
                info = f"loss {outputs['loss']:.4f} lr {self.optimizer.param_groups[0]['lr']:.2e}"
                if s.epoch_based:
                    info = f"epoch {self.epoch + 1}/{s.max_epochs} " + info
                self._progress.update(self._task, completed=self.iter, info=info)
            epoch_end = self.inner_iter == self.iters_per_epoch
            if self.inner_iter % s.log_interval == 0 or epoch_end or self.iter >= self.max_iters:
                self._flush_window()
            if not s.epoch_based:
                self._finished = self.iter >= self.max_iters
                due_val = self.iter % s.val_interval == 0 or self._finished
                due_ckpt = self.iter % s.checkpoint["interval"] == 0 or self._finished
                if epoch_end:
                    self.epoch += 1
                    self.inner_iter = 0
                if due_val or due_ckpt:
                    improved = self._maybe_validate(due_val and self.iter >= s.val_begin)
                    self.save_checkpoint(improved)
                if self._finished:
                    break
            t_data = time.perf_counter()
        if s.epoch_based:
            self.epoch += 1
            self.inner_iter = 0
            self._finished = self.epoch >= s.max_epochs
            self.call("after_epoch")
            due_val = (self.epoch % s.val_interval == 0 or self._finished) and self.epoch >= s.val_begin
            improved = self._maybe_validate(due_val)
            self.save_checkpoint(improved)
        else:
            self.call("after_epoch")

    def _train_step(self, batch: Any) -> dict[str, Any]:
        s = self.settings
        self.schedule.apply(self.optimizer, self.iter)
        inputs, samples = split_batch(batch)
        inputs = inputs.to(self.device, non_blocking=True)
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        samples = move_samples(samples, self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None):
            losses = self.train_module(inputs, samples)
        total, logged = parse_losses(losses)
        reduced = {k: float(dist.all_reduce_mean(v.detach().float())) for k, v in logged.items()}
        loss_value = float(dist.all_reduce_mean(total.detach().float()))
        if not math.isfinite(loss_value):
            where = (f"epoch {self.epoch + 1}, iteration {self.inner_iter + 1} (global iteration {self.iter + 1})")
            bad = ", ".join(f"{k}={v}" for k, v in reduced.items() if not math.isfinite(v)) or f"loss={loss_value}"
            last = f"; last good checkpoint: {self.last_checkpoint}" if self.last_checkpoint else "; no checkpoint was written yet"
            raise InvalidLossError(f"invalid loss at {where}: {bad} (learning rate "
                                   f"{self.optimizer.param_groups[0]['lr']:.3g}; lower train.optimizer.lr or "
                                   f"enable train.clip_grad){last}")
        self.optimizer.zero_grad(set_to_none=True)
        out: dict[str, Any] = {"loss": loss_value, **{k: v for k, v in reduced.items() if k != "loss"}}
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            if s.clip_grad:
                self.scaler.unscale_(self.optimizer)
                out["grad_norm"] = self._clip()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            if s.clip_grad:
                out["grad_norm"] = self._clip()
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return out

    def _clip(self) -> float:
        c = self.settings.clip_grad or {}
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, float(c["max_norm"]), float(c.get("norm_type", 2)))
        return float(norm)

    # ---------------------------------------------------------------- validation
    def _maybe_validate(self, due: bool) -> bool:
        """Validate when due and a validation set exists; returns whether the best metric improved."""
        if not due or self.val_dataset is None or self.evaluator is None:
            return False
        metrics = self.validate()
        self.last_metrics = metrics
        c = self.settings.checkpoint
        key = c.get("save_best")
        if not key or not metrics:
            return False
        if key == "auto":
            key = next(iter(metrics))
        if key not in metrics:
            raise ConfigError(f"train.checkpoint.save_best: '{key}' is not among the metrics ({', '.join(metrics)})")
        value = metrics[key]
        greater = c.get("rule", "greater") == "greater"
        old = self.best.get("value")
        if old is None or (value > old if greater else value < old):
            self.best = {"metric": key, "value": value, "epoch": self.epoch, "iter": self.iter}
            return True
        return False

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Evaluate the EMA model (or the model) on the validation set, gathered over ranks."""
        self.call("before_val")
        model = self.ema.module if self.ema is not None else self.model
        was_training = model.training
        model.eval()
        metrics = run_evaluation(model, self.val_dataset, self.val_collate_fn, self.evaluator, self.device,
                                 self.val_batch_size, self.val_num_workers, self.amp_dtype, desc="val")
        model.train(was_training)
        record = {**metrics, "epoch": self.epoch, "iter": self.iter,
                  "step": self.epoch if self.settings.epoch_based else self.iter, "mode": "val"}
        self.write_record(record)
        if self.is_main:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float) and "/" in k and "_precision" not in k)
            self.log.info(f"validation at {'epoch ' + str(self.epoch) if self.settings.epoch_based else 'iteration ' + str(self.iter)}: {shown}")
        self.call("after_val", metrics)
        return metrics


@torch.no_grad()
def run_evaluation(model: nn.Module, dataset: Any, collate_fn: Callable | None, evaluator: Any, device: torch.device,
                   batch_size: int = 1, num_workers: int = 0, amp_dtype: torch.dtype | None = None,
                   desc: str = "test", predict: Callable | None = None) -> dict[str, float]:
    """Predict every image of `dataset` (sharded over ranks), feed the evaluator, return its
    metrics (identical on every rank). `predict(model, inputs, samples)` replaces
    `model.predict` (test-time augmentation)."""
    sampler = ShardSampler(len(dataset), dist.get_rank(), dist.get_world_size())
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                        num_workers=num_workers, pin_memory=device.type == "cuda",
                        worker_init_fn=_worker_init() if num_workers else None,
                        generator=torch.Generator().manual_seed(0))
    evaluator.reset()
    with make_progress(transient=True) as progress:
        task = progress.add_task(desc, total=len(loader), info="")
        for batch in loader:
            inputs, samples = split_batch(batch)
            inputs = inputs.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                preds = predict(model, inputs, samples) if predict else model.predict(inputs, samples)
            evaluator.process(samples, [p.to("cpu") for p in preds])
            progress.advance(task)
    return evaluator.evaluate()


def _worker_init() -> Callable[[int], None] | None:
    """det's data-loader worker set-up (seeds det's transform stream per worker from the
    loader's seeded generator; one thread per worker) when the data package is present."""
    try:
        from det.core.data.loader import worker_init
    except ImportError:
        return None
    return worker_init


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
