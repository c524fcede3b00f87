"""Where `det export` / `det serve` find their model: a checkpoint or exported file path, or a
model name resolved by the one plug-in point below (a model index registers it)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from det.core.errors import DetError

ModelResolver = Callable[[str], Path]


def _zoo_weights(name: str) -> Path:
    """det's model index (`det models list`): downloaded and converted on first use."""
    from det.core.zoo import resolve_weights

    return Path(resolve_weights(name))


_resolver: ModelResolver | None = _zoo_weights


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


def source_or_model(source: str | Path | None, model: str | None) -> Path:
    """The CKPT/FILE argument, or --model NAME through the resolver; exactly one of them."""
    if (source is None) == (model is None):
        raise DetError("give a checkpoint or exported file, or --model NAME (see det models list), not both")
    if model is not None:
        if _resolver is None:
            raise DetError(f"--model {model}: no model index is registered")
        return Path(_resolver(model))
    return resolve_source(source)
