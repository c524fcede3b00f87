"""Checks a resolved preset without reading data: known top-level sections, and each section's
components build (sections register their checker in SECTION_CHECKS)."""
from __future__ import annotations

from collections.abc import Callable

from det.core.errors import ConfigError, did_you_mean

# Top-level sections of a preset. Each section's owner documents its keys in docs/presets.md.
KNOWN_SECTIONS = ("model", "data", "train", "evaluation", "tracker", "infer", "meta")


def _check_model(cfg: dict) -> None:
    from det.core.models import build_detector

    build_detector(cfg["model"])


def _check_tracker(cfg: dict) -> None:
    from det.core.tracking.search import check_tracker_config

    check_tracker_config(cfg["tracker"])


def _check_data(cfg: dict) -> None:
    from det.core.data.validate import check_data_section

    check_data_section(cfg)


# section -> function(cfg) that raises ConfigError when the section cannot be built.
def _check_train(cfg: dict) -> None:
    from det.core.engine.settings import check_train_section

    check_train_section(cfg)


SECTION_CHECKS: dict[str, Callable[[dict], None]] = {
    "data": _check_data,
    "model": _check_model,
    "tracker": _check_tracker,
    "train": _check_train,
}


def validate_preset(cfg: dict) -> list[str]:
    """Raise ConfigError on the first problem; return the sections that were built."""
    if not cfg:
        raise ConfigError("preset is empty (no model, data or train section)")
    for key in cfg:
        if key not in KNOWN_SECTIONS:
            raise ConfigError(f"{key}: unknown top-level section{did_you_mean(key, KNOWN_SECTIONS)}")
    checked = []
    for section, check in SECTION_CHECKS.items():
        if section in cfg and cfg[section] is not None:
            check(cfg)
            checked.append(section)
    return checked
