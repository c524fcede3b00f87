"""torch.distributed set-up from torchrun's or Slurm's environment, and the few collective
helpers the engine needs (rank queries, barrier, gathering Python objects).

gloo on CPU, NCCL on CUDA. A single process (no WORLD_SIZE / SLURM_NTASKS > 1) never touches
torch.distributed, so every helper also works without it.
"""
from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from det.core.errors import DetError


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0")))


def slurm_master_addr(nodelist: str) -> str:
    """The first host of a Slurm node list ('node[03-05,7],gpu1' -> 'node03')."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=10, check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    first = re.split(r",(?![^\[]*\])", nodelist)[0]
    match = re.match(r"^([^\[]+)\[([^\]]+)\]", first)
    if not match:
        return first
    prefix, ranges = match.groups()
    start = ranges.split(",")[0].split("-")[0]
    return prefix + start


def _env_from_slurm() -> None:
    """Translate Slurm's variables (srun with one task per GPU) into torchrun's."""
    os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
    os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
    os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    os.environ.setdefault("MASTER_ADDR", slurm_master_addr(os.environ.get("SLURM_NODELIST", "127.0.0.1")))
    os.environ.setdefault("MASTER_PORT", "29500")


def wanted_world_size() -> int:
    """Processes the launcher started: torchrun's WORLD_SIZE, else Slurm's SLURM_NTASKS."""
    if "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    if "SLURM_PROCID" in os.environ and "SLURM_NTASKS" in os.environ and "SLURM_STEP_ID" in os.environ:
        return int(os.environ["SLURM_NTASKS"])
    return 1


def init_distributed(device: torch.device, timeout_s: int = 1800) -> bool:
    """Join the process group when launched by torchrun or srun; returns whether distributed."""
    if is_dist():
        return True
    if wanted_world_size() <= 1:
        return False
    if "WORLD_SIZE" not in os.environ:
        _env_from_slurm()
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise DetError(f"distributed launch: environment variable {key} is not set (use torchrun or srun)")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(seconds=timeout_s))
    if dist.get_rank() != 0:  # only rank 0 talks; other ranks still report warnings and errors
        import logging

        from det.core.log import get_logger

        get_logger().setLevel(logging.WARNING)
    return True


def destroy() -> None:
    if is_dist():
        dist.destroy_process_group()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-item list without distributed)."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (for logging losses); unchanged without distributed."""
    if not is_dist():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / get_world_size()
