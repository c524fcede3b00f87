"""`custom_imports: [my_pkg.my_module, ...]` in a preset: user modules imported before anything
is built, so that their `det.core.registry.register` calls add components to det's tables."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from det.core.errors import ConfigError

KEY = "custom_imports"


def import_custom(cfg: dict, source: str | Path | None = None) -> list[str]:
    """Import each module of `cfg['custom_imports']` (the current directory is on the path, as
    for `python -m`). A module that is missing or fails to import is an error naming it and
    the preset line that lists it."""
    names = cfg.get(KEY)
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{KEY}: expected a list of module names, got {names!r}")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of user code is reported, not raised raw
            what = "not found" if isinstance(exc, ModuleNotFoundError) and exc.name and name.startswith(exc.name) \
                else f"failed to import ({type(exc).__name__}: {exc})"
            raise ConfigError(f"{_where(name, source)}: {KEY}: module '{name}' {what}") from None
    return list(names)


def _where(name: str, source: str | Path | None) -> str:
    """`file:line` of the preset line naming `name` (the first file of the chain that does)."""
    for path in _files(source):
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for i, line in enumerate(lines, 1):
            if name in line:
                return f"{path}:{i}"
    return str(source) if source else KEY


def _files(source: Any) -> list[Path]:
    if source is None:
        return []
    from det.core.config.loader import BASE_KEY, load_yaml

    files, todo = [], [Path(source)]
    while todo:
        path = todo.pop(0)
        files.append(path)
        data = load_yaml(path) if path.is_file() else None
        bases = data.get(BASE_KEY) if isinstance(data, dict) else None
        todo += [path.parent / b for b in ([bases] if isinstance(bases, str) else bases or [])]
    return files
