"""Backbone initialisation from a preset: `model.backbone.init: {type: Pretrained, checkpoint: ...,
prefix: ...}` as MMDetection's `init_cfg`. `checkpoint` is a path, an http(s) URL or
`torchvision://NAME` (torchvision's ImageNet-1k V1 weights, as MMDetection's configs use) or
`timm://NAME` (timm's pretrained weights, `det.core.zoo.timm_weights`);
downloads go through the zoo cache (`$DET_HOME/checkpoints`, hash prefix checked). Applied when
training starts from a preset (not on resume, not when a checkpoint is loaded for test/infer)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from det.core.config.build import check_keys
from det.core.errors import ConfigError, DetError
from det.core.log import get_logger
from det.core.zoo.download import download, hash_prefix_of
from det.core.zoo.index import det_home

KEYS = {"type", "checkpoint", "prefix"}


def check_init(cfg: Any, where: str = "model.backbone.init") -> dict:
    """Validate an init section; -> a plain dict."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping like {{type: Pretrained, checkpoint: torchvision://resnet50}}")
    check_keys(cfg, KEYS, where=where)
    if cfg.get("type", "Pretrained") != "Pretrained":
        raise ConfigError(f"{where}.type: '{cfg.get('type')}' is not 'Pretrained'")
    if not isinstance(cfg.get("checkpoint"), str) or not cfg["checkpoint"]:
        raise ConfigError(f"{where}.checkpoint: missing (a path, URL, torchvision://NAME or timm://NAME)")
    return dict(cfg)


def checkpoint_url(checkpoint: str) -> str:
    """torchvision://resnet50 -> torchvision's ImageNet-1k V1 URL; URLs and paths unchanged."""
    if not checkpoint.startswith("torchvision://"):
        return checkpoint
    import torchvision

    name = checkpoint[len("torchvision://"):]
    try:
        weights = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        raise ConfigError(f"model.backbone.init.checkpoint: torchvision has no model '{name}'") from None
    member = getattr(weights, "IMAGENET1K_V1", None) or weights.DEFAULT
    return str(member.url)


def local_checkpoint(checkpoint: str) -> Path:
    """The file for `checkpoint`: the path itself, or the cached download of its URL."""
    url = checkpoint_url(checkpoint)
    if "://" not in url:
        path = Path(url).expanduser()
        if not path.is_file():
            raise DetError(f"model.backbone.init.checkpoint: {path}: file not found")
        return path
    dest = det_home() / "checkpoints" / url.rsplit("/", 1)[-1]
    if dest.is_file():
        return dest
    try:
        return download(url, dest, hash_prefix_of(url))
    except DetError as exc:
        raise DetError(f"{exc}; without network, place the file at {dest}") from None


def _source_state(checkpoint: str, backbone: nn.Module) -> tuple[Path, dict]:
    """(where the tensors came from, the checkpoint's state dict) for `checkpoint`."""
    if checkpoint.startswith("timm://"):
        from det.core.zoo.timm_weights import timm_state_dict

        return Path(checkpoint), timm_state_dict(checkpoint[len("timm://"):], backbone)
    from det.core.convert.checkpoints import load_foreign_checkpoint, state_dict_of

    path = local_checkpoint(checkpoint)
    return path, state_dict_of(load_foreign_checkpoint(path), path)


def init_backbone(backbone: nn.Module, cfg: dict) -> dict[str, list[str]]:
    """Load the checkpoint's tensors (under `prefix`, stripped) into `backbone`; tensors whose
    shape differs are skipped; -> report of missing / unexpected / mismatched keys."""
    path, state = _source_state(cfg["checkpoint"], backbone)
    prefix = cfg.get("prefix") or ""
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise DetError(f"{path}: no tensors under the prefix '{prefix}' (model.backbone.init.prefix)")
    adapt = getattr(backbone, "adapt_pretrained", None)  # e.g. Swin: Microsoft's original layout
    state = adapt(state) if adapt is not None else state
    from det.core.engine.checkpoint import load_matching

    get_logger().info(f"backbone initialised from {cfg['checkpoint']}")
    report, loaded = load_matching(backbone, state, "backbone init")
    if not loaded:
        raise DetError(f"{path}: no tensor fits the backbone (model.backbone.init; check the prefix)")
    return report
