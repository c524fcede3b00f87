"""Is a det preset MMDetection's model, exactly? Used by tools/zoo_index.py (peer environment).

Two views: the settings (every key either side writes down, with MMDetection's constructor
defaults filling in what its config leaves out) and the built modules (tensor names and shapes
after det's conversion rules, every norm layer's eps and momentum)."""
from __future__ import annotations

import inspect
from typing import Any

import torch

from zoo_index import canonical_model, flatten

# Settings det writes down that only steer det's own training code (no MMDetection counterpart)
DET_ONLY: tuple[str, ...] = ()
# MMDetection settings whose value is what det's modules always do (no option in det), matched on
# the whole key or its end: RTMDet heads without an objectness branch; masks padded with the batch
# in training; batch-first attention; in-place activations (same values); deformable/DINO
# decoders without MMDetection's optional final norm (the tensor check sees any norm layer).
DET_BUILTIN = {"bbox_head.with_objectness": False, "data_preprocessor.pad_mask": True, "batch_first": True,
               "act_cfg.inplace": True, "decoder.post_norm_cfg": None}
_MISSING = object()


def _norm_default(node: dict, key: str) -> Any:
    """PyTorch's defaults for the norm layers mmcv builds from {type: BN|SyncBN|GN}."""
    cls = torch.nn.GroupNorm if node.get("type") == "GN" else torch.nn.BatchNorm2d
    if key == "requires_grad":
        return True
    param = inspect.signature(cls).parameters.get(key)
    return _MISSING if param is None else param.default


def _ctor_default(registries: list, node: dict, key: str) -> Any:
    if node.get("type") in ("BN", "SyncBN", "GN", "BN2d"):
        return _norm_default(node, key)
    for registry in registries:
        cls = registry.get(node.get("type")) if node.get("type") else None
        if cls is not None:
            param = inspect.signature(cls.__init__).parameters.get(key)
            return _MISSING if param is None or param.default is inspect.Parameter.empty else param.default
    return _MISSING


def mm_value(registries: list, mm_model: dict, dotted: str) -> Any:
    """The value MMDetection uses at `dotted`: written in the config or a constructor default."""
    node: Any = mm_model
    for key in dotted.split("."):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, dict):
            node = _ctor_default(registries, node, key)
            if isinstance(node, tuple):
                node = list(node)
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return a == b


def _builtin(key: str, want: Any) -> bool:
    return any((key == k or key.endswith("." + k)) and _same(want, v) for k, v in DET_BUILTIN.items())


def settings_problems(registries: list, mm_model: dict, det_model: dict) -> list[str]:
    det_flat, mm_flat = flatten(canonical_model(det_model)), flatten(mm_model)
    problems = []
    for key, value in det_flat.items():
        if key.startswith(DET_ONLY):
            continue
        want = mm_flat[key] if key in mm_flat else mm_value(registries, mm_model, key)
        if want is _MISSING:
            problems.append(f"model.{key}: det sets {value!r}, MMDetection has no such setting")
        elif not _same(value, want):
            problems.append(f"model.{key}: det {value!r} vs MMDetection {want!r}")
    for key, want in mm_flat.items():
        if _builtin(key, want):
            continue
        if key not in det_flat and not key.startswith(DET_ONLY):
            problems.append(f"model.{key}: MMDetection sets {want!r}, det's preset does not")
    return problems


def module_problems(MODELS, cfg, det_model_cfg: dict) -> list[str]:
    from det.core.convert.weights import MMDET_RULES, rename
    from det.core.models import build_detector

    cfg.model.backbone.init_cfg = None
    mm = MODELS.build(cfg.model)
    det = build_detector(det_model_cfg)
    mm_state, _ = rename(mm.state_dict(), MMDET_RULES)
    det_state = det.state_dict()
    problems = [f"tensor {k}: MMDetection {tuple(v.shape)}, det {tuple(det_state[k].shape) if k in det_state else 'none'}"
                for k, v in mm_state.items() if k not in det_state or det_state[k].shape != v.shape]
    problems += [f"tensor {k}: det only" for k in det_state if k not in mm_state and not k.endswith("num_batches_tracked")]
    det_modules = dict(det.named_modules())
    for name, module in mm.named_modules():
        if isinstance(module, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)):
            mine = det_modules.get(name)
            for attr in ("eps", "momentum", "num_groups"):
                if hasattr(module, attr) and getattr(mine, attr, None) != getattr(module, attr):
                    problems.append(f"{name}.{attr}: MMDetection {getattr(module, attr)}, det {getattr(mine, attr, None)}")
    return problems[:12]


def check_preset(MODELS, cfg, det_cfg: dict, mm_model: dict) -> list[str]:
    from mmdet.registry import TASK_UTILS

    return settings_problems([MODELS, TASK_UTILS], mm_model, det_cfg["model"]) + \
        module_problems(MODELS, cfg, det_cfg["model"])
