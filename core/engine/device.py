"""The one device resolver and the one seeding function of det (training, testing, inference)."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from det.core.engine import dist
from det.core.errors import DetError


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> CUDA (this process's local rank) when available, else CPU."""
    name = "auto" if name is None else str(name)
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
