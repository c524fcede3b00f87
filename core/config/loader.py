"""Loading YAML presets: `_base_` inheritance (path or list, relative to the file), deep merge,
`_delete_: true` to replace instead of merge, cycle detection."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from det.core.errors import ConfigError

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"


# Bounds on what one YAML document may expand to: presets hold hundreds of nodes, a 1 KB alias
# bomb ("billion laughs") expands to billions, and deep nesting overflows the recursive composer.
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 100


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key_node.value}' (first on line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def safe_load_bounded(text: str, where: str | Path) -> Any:
    """`yaml.safe_load` with limits on nesting depth and alias expansion (ConfigError naming
    `where`) and no duplicate keys; syntax errors stay `yaml.YAMLError`."""
    _check_depth(text, where)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise ConfigError(f"{where}: YAML expands to more than {MAX_YAML_NODES} nodes once aliases are "
                              "copied out; refusing (an alias bomb?)")
        return fix_exponent_floats(loader.construct_document(node))
    finally:
        loader.dispose()


def parse_yaml(text: str, where: str | Path) -> Any:
    """`safe_load_bounded`, with every failure a ConfigError naming `where` (and the line)."""
    try:
        return safe_load_bounded(text, where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[:1] or ["invalid YAML"]
        problem = problem if isinstance(problem, str) else problem[0]
        at = f"{where}:{mark.line + 1}" if mark is not None else str(where)
        raise ConfigError(f"{at}: YAML syntax error: {problem}") from None


def _check_depth(text: str, where: str | Path) -> None:
    """Nesting depth from the event stream (the parser is iterative; the composer is not)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(f"{where}:{line}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in the tree the document becomes once aliases are copied out (memoised per node,
    so an alias bomb is measured without being expanded)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once (the depth check bounds the rest)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = min(size, MAX_YAML_NODES + 1)
    return memo[id(node)]


def load_yaml(path: str | Path) -> Any:
    """Parse one YAML file (see `parse_yaml`); errors name the file and line."""
    from det.core.fileio import read_text

    return parse_yaml(read_text(path, "YAML file", ConfigError), Path(path))


_EXP_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def fix_exponent_floats(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads `1e-3` as a string; presets mean a number."""
    if isinstance(value, str) and _EXP_FLOAT.match(value):
        return float(value)
    if isinstance(value, dict):
        return {k: fix_exponent_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fix_exponent_floats(v) for v in value]
    return value


def merge(base: Any, override: Any) -> Any:
    """Deep-merge `override` into a copy of `base`. Mappings merge key by key unless the
    override mapping has `_delete_: true`; any other value replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        if override.get(DELETE_KEY):
            return {k: copy.deepcopy(v) for k, v in override.items() if k != DELETE_KEY}
        out = copy.deepcopy(base)
        for key, value in override.items():
            if key == DELETE_KEY:
                continue
            out[key] = merge(out[key], value) if key in out else _strip_delete(copy.deepcopy(value))
        return out
    return _strip_delete(copy.deepcopy(override))


def _strip_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != DELETE_KEY}
    if isinstance(value, list):
        return [_strip_delete(v) for v in value]
    return value


def load_preset(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Load a preset (a bundled name or a path), resolve `_base_` chains and apply `--set`
    overrides. Returns a plain dict."""
    from det.core.config.overrides import apply_overrides
    from det.core.config.presets import resolve_preset_path

    if is_checkpoint(path):
        return apply_overrides(preset_from_checkpoint(path), overrides or [])
    resolved = resolve_preset_path(path)
    cfg = _load_with_bases(resolved, stack=())
    if not isinstance(cfg, dict):
        raise ConfigError(f"{resolved}: a preset must be a YAML mapping, got {type(cfg).__name__}")
    cfg = apply_overrides(cfg, overrides or [])
    from det.core.config.plugins import import_custom

    import_custom(cfg, resolved)  # plugins register their components before anything is built
    return cfg


def _load_with_bases(path: Path, stack: tuple[Path, ...]) -> dict:
    path = path.resolve()
    if path in stack:
        chain = " -> ".join(str(p) for p in (*stack, path))
        raise ConfigError(f"{path}: _base_ cycle: {chain}")
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a YAML mapping, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a path or a list of paths")
    merged: dict = {}
    for base in bases:
        merged = merge(merged, _load_with_bases(_base_path(path, base), (*stack, path)))
    return merge(merged, data)


def _base_path(path: Path, base: str) -> Path:
    """A `_base_` entry: a path relative to the file, else a bundled preset name
    (`demo/rtmdet_tiny`, `_base_/models/rtmdet_tiny`), as every command accepts."""
    from det.core.config.presets import preset_root

    candidate = path.parent / base
    if candidate.is_file():
        return candidate
    stem = base[len("presets/"):] if base.startswith("presets/") else base
    bundled = preset_root() / (stem if stem.endswith((".yaml", ".yml")) else f"{stem}.yaml")
    if bundled.is_file():
        return bundled
    raise ConfigError(f"{path}: _base_ not found: {base} (neither a file relative to the preset nor a bundled preset)")


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_ZIP_MAGIC = b"PK\x03\x04"


def is_checkpoint(path: str | Path) -> bool:
    """A torch checkpoint (by suffix, or a zip archive where a YAML file was expected)."""
    path = Path(path)
    if path.suffix in CHECKPOINT_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == _ZIP_MAGIC
    except OSError:
        return False


def preset_from_checkpoint(path: str | Path) -> dict:
    """The resolved preset a det checkpoint carries (`det train` stores it in every checkpoint)."""
    from det.core.fileio import load_checkpoint

    ckpt = load_checkpoint(path)
    preset = ckpt.get("preset") if isinstance(ckpt, dict) else None
    if not isinstance(preset, dict) or not preset:
        raise ConfigError(f"{path}: the checkpoint carries no preset; pass the preset it was trained with")
    return preset
