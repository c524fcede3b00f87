"""The one device resolver and the one seeding function of det (training, testing, inference)."""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from det.core import dist
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


# oneDNN (torch 2.14.1, AVX2 CPUs) corrupts the heap in the backward pass of a channels-last 1x1
# convolution with stride > 1 and fewer than 8 input channels (reproduced: Conv2d(4, 8, 1,
# stride=2) on a (2, 4, 16, 16) NHWC batch; 12 or more channels are fine). ResNet downsample
# convs of very narrow models (base_channels 4) are such convolutions.
_MIN_SAFE_NHWC_CHANNELS = 8


def channels_last_is_safe(model: torch.nn.Module, log: Any = None) -> bool:
    """False (and a warning) when the model holds a convolution that oneDNN's channels-last
    backward mishandles; training then keeps the contiguous layout."""
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Conv2d):
            continue
        per_group = module.in_channels // module.groups
        if tuple(module.kernel_size) == (1, 1) and tuple(module.stride) != (1, 1) and per_group < _MIN_SAFE_NHWC_CHANNELS:
            if log is not None:
                log.warning(f"channels_last off: {name} is a strided 1x1 convolution with {per_group} input channels, "
                            "whose channels-last backward corrupts memory in oneDNN; training in the contiguous layout")
            return False
    return True
