"""`timm://NAME` for `model.backbone.init`: ImageNet weights through timm's own pretrained loading
(its Hugging Face hub or release URL, its filters and classifier handling). A file placed in det's
cache (`$DET_HOME/checkpoints/timm/ARCH.TAG.safetensors`, or `.pth` / `.bin`) is used first and
needs no network; offline without it the error names the URL and that path."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from det.core.errors import ConfigError, DetError
from det.core.zoo.index import det_home

SUFFIXES = (".safetensors", ".pth", ".bin")
WHERE = "model.backbone.init.checkpoint"


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ConfigError(f"{WHERE}: timm:// needs timm: pip install 'det[timm]'") from None
    return timm


def timm_source(name: str) -> tuple[str, str]:
    """timm://NAME -> (ARCH.TAG timm resolves NAME to, the URL of its weights)."""
    timm = _timm()
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except (RuntimeError, ValueError, KeyError):
        cfg = None
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ConfigError(f"{WHERE}: timm has no pretrained weights named '{name}' (see timm.list_pretrained())")
    full = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else str(cfg.architecture)
    if cfg.hf_hub_id:
        return full, f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/{cfg.hf_hub_filename or 'model.safetensors'}"
    return full, str(cfg.url)


def cache_path(full: str, url: str) -> Path:
    """Where det looks for the file of timm weights ARCH.TAG (the URL's file type)."""
    suffix = next((s for s in SUFFIXES if url.endswith(s)), ".pth")
    return det_home() / "checkpoints" / "timm" / f"{full}{suffix}"


def _cached(full: str) -> Path | None:
    folder = det_home() / "checkpoints" / "timm"
    return next((folder / f"{full}{s}" for s in SUFFIXES if (folder / f"{full}{s}").is_file()), None)


def timm_state_dict(name: str, backbone: nn.Module) -> dict:
    """The weights of timm model NAME in `backbone`'s key layout: TimmBackbone's feature model
    (same out_indices, `timm_model.` prefix) or the plain classifier's names for other backbones."""
    timm = _timm()
    full, url = timm_source(name)
    local = _cached(full)
    kwargs: dict[str, Any] = dict(getattr(backbone, "timm_args", {}))
    if local is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(local)}
    try:
        model = timm.create_model(full, pretrained=True, **kwargs)
    except Exception as exc:  # timm and huggingface_hub raise many types for a missing or bad file
        if local is not None:
            raise DetError(f"{local}: timm could not load it for '{full}' ({type(exc).__name__}: {exc})") from None
        raise DetError(f"{WHERE}: timm://{name}: could not get {url} ({type(exc).__name__}); without network, "
                       f"place the file at {cache_path(full, url)}") from None
    prefix = "timm_model." if kwargs.get("features_only") else ""
    return {prefix + k: v for k, v in model.state_dict().items()}
