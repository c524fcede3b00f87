"""Loads det.ops._C (the compiled kernels) and refuses a missing or stale build.

A stale build is one compiled from other sources than those next to this file: the hash of
ops/csrc baked in at build time must equal the hash of the sources present now. There is
no pure-Python fallback: a slow silent path would hide a broken install.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch  # noqa: F401  - loads libtorch before the extension that links to it

from det.ops._source_hash import source_hash

REBUILD = "make setup (or: .venv/bin/pip install --no-deps --no-build-isolation -e .)"
_CSRC = Path(__file__).resolve().parent / "csrc"


def _load():
    try:
        _C = importlib.import_module("det.ops._C")
    except ImportError as exc:
        raise ImportError(f"det.ops: compiled extension det.ops._C is missing or broken ({exc}); "
                          f"rebuild it with: {REBUILD}") from None
    if _CSRC.is_dir():
        current = source_hash(_CSRC)
        if _C.SOURCE_HASH != current:
            raise ImportError(f"det.ops: compiled extension det.ops._C is stale (built from sources "
                              f"{_C.SOURCE_HASH}, sources are now {current}); rebuild it with: {REBUILD}")
    return _C


_C = _load()


def has_kernel(op: str, device_type: str) -> bool:
    """Whether ``torch.ops.det.<op>`` has a compiled kernel for `device_type` ('CPU', 'CUDA').

    CUDA kernels exist only in builds made with a CUDA toolkit (see setup.py); the wrappers use
    this to fall back to torchvision or PyTorch where they are absent.
    """
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"det::{op}", device_type.upper())
