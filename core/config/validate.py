"""Checks a resolved preset without reading data: known top-level sections, and each section's
components build (sections register their checker in SECTION_CHECKS)."""
from __future__ import annotations

from collections.abc import Callable

from det.core.errors import ConfigError, did_you_mean

# Top-level sections of a preset. Each section's owner documents its keys in docs/presets.md.
KNOWN_SECTIONS = ("model", "data", "train", "evaluation", "tracker", "infer", "meta", "custom_imports")


def _check_model(cfg: dict) -> None:
    """Build the model on the meta device (shapes only, no memory), or on the CPU for the few
    modules whose constructors compute on tensors."""
    import torch

    from det.core.models import build_detector

    try:
        with torch.device("meta"):
            build_detector(cfg["model"])
    except ConfigError as exc:
        if "NotImplementedError" not in str(exc) and "meta" not in str(exc):
            raise
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


def _check_evaluation(cfg: dict) -> None:
    from det.core.config.build import at_path, check_signature_keys
    from det.core.evaluation.evaluator import EVALUATORS

    section = cfg["evaluation"]
    if not isinstance(section, dict):
        raise ConfigError(f"evaluation: expected a mapping, got {type(section).__name__}")
    name = section.get("type", "CocoMetric")
    if name not in EVALUATORS:
        raise ConfigError(f"evaluation.type: unknown evaluator '{name}'{did_you_mean(str(name), EVALUATORS)}")
    with at_path("evaluation"):
        check_signature_keys(EVALUATORS[name], {k: v for k, v in section.items() if k not in ("type", "dataset")}, name)


def _check_infer(cfg: dict) -> None:
    from det.core.inference.settings import infer_settings

    infer_settings(cfg)


SECTION_CHECKS: dict[str, Callable[[dict], None]] = {
    "evaluation": _check_evaluation,
    "infer": _check_infer,
    "data": _check_data,
    "model": _check_model,
    "tracker": _check_tracker,
    "train": _check_train,
}


# Sections read outside the build (custom_imports: when loading) or free-form by design (meta).
NOT_BUILT = ("custom_imports", "meta")


def validate_preset(cfg: dict, strict: bool = False) -> list[str]:
    """Raise ConfigError on the first problem; return the sections that were built. With
    `strict`, also fail on any key that building the preset never read."""
    if strict:
        from det.core.config.consumed import track

        cfg = track(cfg)
    checked = _validate(cfg)
    if strict:
        _fail_on_unread(cfg)
    return checked


def _fail_on_unread(cfg: dict) -> None:
    from det.core.config.consumed import mark_all, unread

    for key in NOT_BUILT:
        if key in cfg:
            mark_all(cfg[key])
    left = unread(cfg)
    if left:
        more = f" (and {len(left) - 1} more: {', '.join(left[1:4])}{', ...' if len(left) > 4 else ''})" if len(left) > 1 else ""
        raise ConfigError(f"{left[0]}: never read while building the preset (misspelt, or a key det does not use)"
                          f"{more}")


def _validate(cfg: dict) -> list[str]:
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
