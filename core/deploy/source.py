"""Where `det export` / `det serve` find their model: a checkpoint or exported file path, or a
model name resolved by the one plug-in point below (a model index registers it)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from det.core.errors import DetError

ModelResolver = Callable[[str], Path]
_resolver: ModelResolver | None = None


def set_model_resolver(resolver: ModelResolver | None) -> None:
    """Register the function that turns a model name (e.g. 'rtmdet_tiny') into a checkpoint path."""
    global _resolver
    _resolver = resolver


def resolve_source(spec: str | Path) -> Path:
    """An existing file as is; otherwise a name given to the registered resolver."""
    path = Path(spec)
    if path.is_file():
        return path
    if _resolver is not None and not path.suffix:
        return Path(_resolver(str(spec)))
    raise DetError(f"{spec}: checkpoint or exported model not found")
