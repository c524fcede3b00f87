"""The random stream every det transform draws from: one numpy Generator per process.

Seeding it (`seed_all`) makes a pipeline reproducible; data loader workers seed it from their
torch worker seed, so the same loader seed gives the same batches."""
from __future__ import annotations

import random

import numpy as np

_RNG = np.random.default_rng(0)


def rng() -> np.random.Generator:
    return _RNG


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
