"""The public way to add components to det's tables without editing det:

    from det.core.registry import register

    @register("backbone", "MyNet")
    class MyNet(nn.Module): ...

and in a preset: `custom_imports: [my_pkg.my_module]` (imported before anything is built),
then `model.backbone.type: MyNet`. A kind names one of det's build tables; a name already in
the table is an error (det's own components cannot be replaced by accident).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from det.core.errors import ConfigError, did_you_mean

T = TypeVar("T")

# kind -> (module, table attribute). New kinds are one line each.
KINDS: dict[str, tuple[str, str]] = {
    "backbone": ("det.core.models.backbones", "BACKBONES"),
    "neck": ("det.core.models.necks", "NECKS"),
    "head": ("det.core.models.dense_heads", "HEADS"),
    "roi_head": ("det.core.models.roi_heads", "ROI_HEADS"),
    "detector": ("det.core.models.detectors", "DETECTORS"),
    "loss": ("det.core.models.losses", "LOSSES"),
    "transform": ("det.core.data.transforms", "TRANSFORMS"),
    "dataset": ("det.core.data.datasets", "DATASETS"),
    "hook": ("det.core.engine.train_hooks", "HOOKS"),
    "metric": ("det.core.evaluation.evaluator", "EVALUATORS"),
    "tracker": ("det.core.tracking", "TRACKERS"),
    "optimizer": ("det.core.engine.optim", "OPTIMIZERS"),
    "scheduler": ("det.core.engine.schedulers", "FACTORS"),
}


def table(kind: str) -> MutableMapping[str, Any]:
    """det's build table of one kind (e.g. table('backbone') is BACKBONES)."""
    if kind not in KINDS:
        raise ConfigError(f"register: unknown kind '{kind}'{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}")
    module, attr = KINDS[kind]
    return getattr(importlib.import_module(module), attr)


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Decorator adding a class or factory to det's `kind` table under `name` (default: its
    own name). Schedulers are functions `factor(k, length, opts, base_lr) -> float`."""
    entries = table(kind)

    def add(obj: T) -> T:
        key = name or getattr(obj, "__name__", None)
        if not key:
            raise ConfigError(f"register('{kind}'): give a name for {obj!r}")
        if key in entries and entries[key] is not obj:
            raise ConfigError(f"register('{kind}', '{key}'): the name is taken by {entries[key]!r}")
        entries[key] = obj
        return obj

    return add
