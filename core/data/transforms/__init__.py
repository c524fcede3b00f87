"""Data transforms composed from preset lists (`{type: Resize, scale: [640, 640], ...}`).

MMDetection's names are accepted as aliases (LoadImageFromFile, PackDetInputs, CachedMosaic,
CachedMixUp) so recipes port with few edits.
"""
from __future__ import annotations

from typing import Any

from det.core.data.transforms.base import Compose, Transform
from det.core.data.transforms.choice import RandomChoice, RandomChoiceResize
from det.core.data.transforms.filtering import FilterAnnotations
from det.core.data.transforms.formatting import Pack, PackDetInputs
from det.core.data.transforms.geometric import (
    Expand, MinIoURandomCrop, Pad, RandomAffine, RandomCrop, RandomFlip, RandomResize, Resize,
)
from det.core.data.transforms.loading import LoadAnnotations, LoadImage
from det.core.data.transforms.mix import MixUp, Mosaic
from det.core.data.transforms.panoptic import LoadPanopticAnnotations
from det.core.data.transforms.photometric import Corrupt, PhotoMetricDistortion, YOLOXHSVRandomAug
from det.core.data.transforms.rng import rng, seed_all

TRANSFORMS: dict[str, Any] = {
    "LoadImage": LoadImage,
    "LoadAnnotations": LoadAnnotations,
    "LoadPanopticAnnotations": LoadPanopticAnnotations,
    "Resize": Resize,
    "RandomResize": RandomResize,
    "RandomFlip": RandomFlip,
    "RandomCrop": RandomCrop,
    "RandomChoice": RandomChoice,
    "RandomChoiceResize": RandomChoiceResize,
    "Pad": Pad,
    "PhotoMetricDistortion": PhotoMetricDistortion,
    "YOLOXHSVRandomAug": YOLOXHSVRandomAug,
    "RandomAffine": RandomAffine,
    "Mosaic": Mosaic,
    "MixUp": MixUp,
    "MinIoURandomCrop": MinIoURandomCrop,
    "Expand": Expand,
    "FilterAnnotations": FilterAnnotations,
    "Corrupt": Corrupt,
    "Pack": Pack,
    # MMDetection spellings
    "LoadImageFromFile": LoadImage,
    "PackDetInputs": Pack,
    "CachedMosaic": Mosaic,
    "CachedMixUp": MixUp,
}


def build_pipeline(cfgs: list | None, key: str = "pipeline") -> Compose:
    """Build a Compose from a list of `{type: ..., ...}` configs (errors name `key.N.field`)."""
    from det.core.config.build import at_path, build, config_path
    from det.core.errors import ConfigError

    if cfgs is None:
        return Compose([])
    if not isinstance(cfgs, list):
        raise ConfigError(f"{config_path(key)}: expected a list of transforms, got {type(cfgs).__name__}")
    transforms = []
    with at_path(key):
        for i, cfg in enumerate(cfgs):
            try:
                transforms.append(build(cfg, TRANSFORMS, str(i)))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{config_path(str(i))}: {exc}") from None
    return Compose(transforms)


__all__ = [
    "TRANSFORMS", "Compose", "Corrupt", "Expand", "FilterAnnotations", "LoadAnnotations", "LoadImage", "LoadPanopticAnnotations", "MinIoURandomCrop",
    "MixUp", "Mosaic", "Pack", "PackDetInputs", "Pad", "PhotoMetricDistortion", "RandomAffine", "RandomChoice",
    "RandomChoiceResize", "RandomCrop",
    "RandomFlip", "RandomResize", "Resize", "Transform", "YOLOXHSVRandomAug", "build_pipeline", "rng", "seed_all",
]
