"""Bundled presets: shipped as package data under `det/presets`, addressed by name or path."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from det.core.errors import ConfigError, did_you_mean


def preset_root() -> Path:
    """Folder holding the bundled presets (the source tree's `presets/` in editable installs)."""
    return Path(str(resources.files("det.presets")))


def list_presets() -> list[str]:
    """Names of bundled presets, e.g. 'rtmdet_tiny' or 'demo/rtmdet_tiny' (bases excluded)."""
    root = preset_root()
    names = []
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root)
        if any(part.startswith("_") for part in rel.parts) or rel.as_posix() == "zoo/index.yaml":
            continue  # bases, and the model index (not a preset)
        names.append(rel.with_suffix("").as_posix())
    return names


def resolve_preset_path(name_or_path: str | Path) -> Path:
    """A path that exists wins; otherwise a bundled preset by name (with or without
    `presets/` and `.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    stem = text[len("presets/"):] if text.startswith("presets/") else text
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    candidate = preset_root() / f"{stem}.yaml"
    if candidate.is_file():
        return candidate
    if path.suffix in (".yaml", ".yml") or "/" in text and not text.startswith("presets/"):
        raise ConfigError(f"{name_or_path}: preset file not found")
    raise ConfigError(f"{name_or_path}: no such preset file or bundled preset{did_you_mean(stem, list_presets())}")
