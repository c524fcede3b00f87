"""`det config validate` checks of the `data` section, without reading or generating data:
loader keys, dataset types and their keys (wrappers recursively), and every pipeline builds."""
from __future__ import annotations

from typing import Any

from det.core.errors import ConfigError, did_you_mean

DATA_KEYS = ("classes", "train", "val", "test")
# Folders a dataset reads from a mapping `data_prefix`: images, and panoptic segment PNGs.
DATA_PREFIX_KEYS = ("img", "img_path", "seg")


def check_data_section(cfg: dict) -> None:
    from det.core.config.build import at_path, check_keys, config_path
    from det.core.data.loader import LOADER_KEYS
    from det.core.data.transforms import build_pipeline

    data = cfg.get("data")
    if not isinstance(data, dict):
        raise ConfigError(f"data: expected a mapping, got {type(data).__name__}")
    check_keys(data, DATA_KEYS, where="data")
    classes = data.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise ConfigError("data.classes: expected a list of class names")
    with at_path("data"):
        for split in ("train", "val", "test"):
            section = data.get(split)
            if section is None:
                continue
            with at_path(split):
                if not isinstance(section, dict):
                    raise ConfigError(f"{config_path()}: expected a mapping")
                check_keys(section, LOADER_KEYS, what="loader key")
                if "dataset" not in section:
                    raise ConfigError(f"{config_path('dataset')}: missing")
                _check_dataset(section["dataset"], "dataset")
                for key in ("pipeline", "switch_pipeline"):
                    if section.get(key) is not None:
                        build_pipeline(section[key], key)
                for key, least in (("batch_size", 1), ("num_workers", 0), ("size_divisor", 1)):
                    value = section.get(key)
                    if key in section and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                        raise ConfigError(f"{config_path(key)}: expected an integer >= {least}, got {value!r}")
                from det.core.data.loader import loader_options

                loader_options(section, split == "train")  # reads every loader key as building does


def _check_dataset(cfg: Any, key: str) -> None:
    from det.core.config.build import at_path, check_keys, config_path, signature_keys
    from det.core.data.datasets import DATASETS
    from det.core.data.transforms import build_pipeline

    with at_path(key):
        if not isinstance(cfg, dict):
            raise ConfigError(f"{config_path()}: expected a mapping with 'type'")
        name = cfg.get("type")
        if name not in DATASETS:
            raise ConfigError(f"{config_path('type')}: unknown dataset type '{name}'{did_you_mean(str(name), DATASETS)}")
        check_keys(cfg, signature_keys(DATASETS[name])[0] | {"type"}, owner=name)
        cfg.items()  # each key counts as read (--strict), as building passes it on
        prefix = cfg.get("data_prefix")
        if isinstance(prefix, dict):  # MMDetection's {img: folder, seg: folder}
            check_keys(prefix, DATA_PREFIX_KEYS, key="data_prefix")
            prefix.items()
        if isinstance(cfg.get("dataset"), dict):
            _check_dataset(cfg["dataset"], "dataset")
        for i, sub in enumerate(cfg.get("datasets") or []):
            with at_path("datasets"):
                _check_dataset(sub, str(i))
        if cfg.get("pipeline") is not None:
            build_pipeline(cfg["pipeline"], "pipeline")
