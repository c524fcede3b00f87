"""The random stream every det transform draws from: one numpy Generator per process.

Seeding it (`seed_all`) makes a pipeline reproducible. Inside a torch DataLoader worker the
stream seeds itself on first use from the worker's seed (which the loader derives from its own
seeded generator), so any DataLoader, not only det's, gives each worker a distinct and
reproducible stream; that first use also turns OpenCV's own threads off in the worker.
"""
from __future__ import annotations

import os
import random

import numpy as np
from torch.utils.data import get_worker_info

_RNG = np.random.default_rng(0)
_WORKER_KEY: tuple[int, int] | None = None


def rng() -> np.random.Generator:
    global _WORKER_KEY
    info = get_worker_info()
    if info is not None:
        key = (os.getpid(), int(info.seed))
        if key != _WORKER_KEY:
            _WORKER_KEY = key
            _enter_worker(int(info.seed))
    return _RNG


def _enter_worker(seed: int) -> None:
    import cv2

    cv2.setNumThreads(0)
    seed_all(seed)


def seed_all(seed: int) -> None:
    """Seed det's transform stream, plus Python's and numpy's legacy global streams (for code
    outside det that a pipeline may call)."""
    global _RNG
    seed = int(seed) % (2**32)
    _RNG = np.random.default_rng(seed)
    random.seed(seed)
    np.random.seed(seed)


def get_state() -> dict:
    return _RNG.bit_generator.state


def set_state(state: dict) -> None:
    _RNG.bit_generator.state = state
