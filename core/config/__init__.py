"""Presets: YAML files with `_base_` inheritance, `--set` overrides and explicit component tables."""
from det.core.config.build import build, build_list, config_path, signature_keys
from det.core.config.loader import load_preset, load_yaml, merge
from det.core.config.overrides import apply_overrides, parse_override
from det.core.config.presets import list_presets, preset_root, resolve_preset_path

__all__ = [
    "apply_overrides",
    "build",
    "build_list",
    "config_path",
    "list_presets",
    "load_preset",
    "load_yaml",
    "merge",
    "parse_override",
    "preset_root",
    "resolve_preset_path",
    "signature_keys",
]
