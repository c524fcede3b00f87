"""`--set a.b.c=value` overrides: dotted paths, list indices (`pipeline.2.scale=[640,640]`),
values parsed as YAML. The same syntax in every command."""
from __future__ import annotations

import copy
from typing import Any

import yaml

from det.core.config.loader import safe_load_bounded
from det.core.errors import ConfigError, did_you_mean


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b.0.c=value' into (['a','b','0','c'], parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text}: empty key")
    try:
        value = safe_load_bounded(raw, f"--set {text}") if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Return a copy of `cfg` with each override applied in order. New mapping keys may be
    added (constructors validate them later); list indices must exist."""
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = cfg
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                try:
                    index = int(part)
                except ValueError:
                    raise ConfigError(f"--set {text}: {where}: list index expected, got '{part}'") from None
                if not -len(node) <= index < len(node):
                    raise ConfigError(f"--set {text}: {where}: index out of range (list has {len(node)} items)")
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                elif part not in node or node[part] is None:
                    if part not in node and node and _looks_like_typo(part, node):
                        raise ConfigError(f"--set {text}: {where}: unknown key{did_you_mean(part, node)}")
                    node[part] = {}
                    node = node[part]
                else:
                    node = node[part]
            else:
                parent = ".".join(parts[:depth]) or "<root>"
                raise ConfigError(f"--set {text}: {parent} is a {type(node).__name__}, not a mapping or list")
    return cfg


def _looks_like_typo(part: str, node: dict) -> bool:
    from det.core.errors import closest

    return closest(part, node.keys()) is not None
