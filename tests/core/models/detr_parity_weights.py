"""Deterministic weights for the DETR-family parity fixture: the same tensors for MMDetection's
model (benchmarks/parity/detr_family.py) and det's converted one (the CI test), generated from a
seed and the parameter names and shapes, so the fixture stores no weights."""
from __future__ import annotations

import math

import torch


def seeded_state(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Uniform(+-1/sqrt(fan_in)) matrices and biases, norm scales near 1, running variances near 1;
    drawn key by key in sorted order from one generator."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        u = torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1 if shape else torch.rand((), generator=g)
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("running_var"):
            out[key] = 1 + 0.2 * u.abs()
        elif key.endswith("running_mean"):
            out[key] = 0.05 * u
        elif _is_norm(key, shapes) and key.endswith(".weight"):
            out[key] = 1 + 0.1 * u
        elif len(shape) >= 2:
            out[key] = u / math.sqrt(math.prod(shape[1:]))
        else:
            out[key] = 0.1 * u
    return out


def _is_norm(key: str, shapes: dict[str, list[int]]) -> bool:
    """A 1-D weight next to a 1-D bias and no larger tensor: LayerNorm, GroupNorm or BatchNorm."""
    return len(shapes[key]) == 1 and (key.rsplit(".", 1)[0] + ".running_var" in shapes or ".norm" in key
                                      or ".gn." in key or ".bn" in key or "norms." in key or "_norm." in key)
