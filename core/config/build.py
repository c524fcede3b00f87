"""Building components from `{type: Name, ...kwargs}` with one explicit table per kind.

Errors name the full preset path of the offending key (`model.backbone.dpeth: unknown key;
did you mean 'depth'?`). Nested builds extend the path: a detector's constructor calling
`build(backbone, BACKBONES, "backbone")` while itself being built at `model` reports
`model.backbone...`.
"""
from __future__ import annotations

import contextlib
import contextvars
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from det.core.errors import ConfigError, did_you_mean

_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("det_config_path", default=())


def config_path(*extra: str) -> str:
    """The dotted preset path being built now, extended by `extra`."""
    return ".".join(p for p in (*_PATH.get(), *extra) if p != "")


@contextlib.contextmanager
def at_path(*parts: str) -> Iterator[None]:
    """Extend the preset path reported by errors while building nested parts."""
    token = _PATH.set((*_PATH.get(), *[p for p in parts if p != ""]))
    try:
        yield
    finally:
        _PATH.reset(token)


def check_keys(cfg: Mapping[str, Any] | None, allowed: Iterable[str], key: str = "", owner: str | None = None,
               what: str = "key", where: str | None = None) -> Mapping[str, Any]:
    """det's one unknown-key check: every key of `cfg` must be in `allowed`, else a ConfigError
    `PATH.bad: unknown key[ for OWNER]; did you mean 'x'?`. PATH is `where` when given (a full
    preset path), else the current preset path extended by `key`. Iterates keys only, so
    --strict still sees which keys were read. Returns `cfg` ({} for None)."""
    if cfg is None:
        return {}
    allowed = set(allowed)
    for k in cfg:
        if k not in allowed:
            suffix = f" for {owner}" if owner else ""
            path = f"{where}.{k}" if where else config_path(key, str(k))
            raise ConfigError(f"{path}: unknown {what}{suffix}{did_you_mean(str(k), allowed)}")
    return cfg


def check_signature_keys(factory: Callable, kwargs: Mapping[str, Any], owner: str, key: str = "",
                         exclude: Iterable[str] = ()) -> None:
    """`check_keys` against the keyword parameters of `factory` (nothing to check with **kwargs)."""
    names, var_kw = signature_keys(factory)
    if not var_kw:
        check_keys(kwargs, names - set(exclude), key, owner)


def signature_keys(factory: Callable) -> tuple[set[str], bool]:
    """Keyword names a constructor accepts, and whether it takes **kwargs."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    return names, var_kw


def build(cfg: Mapping[str, Any] | None, table: Mapping[str, Callable], key: str = "", **defaults: Any) -> Any:
    """Construct `table[cfg['type']](**kwargs)`; `defaults` fill keys the preset leaves out.

    `key` is this component's name relative to the current preset path (e.g. "backbone").
    Returns None for a None config.
    """
    if cfg is None:
        return None
    with at_path(key):
        where = config_path()
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{where or '<root>'}: expected a mapping with 'type', got {type(cfg).__name__}")
        if "type" not in cfg:
            raise ConfigError(f"{where}.type: missing; one of: {', '.join(sorted(table))}")
        name = cfg["type"]
        factory = table.get(name)
        if factory is None:
            raise ConfigError(f"{config_path('type')}: unknown type '{name}'{did_you_mean(name, table)}")
        kwargs = {**defaults, **{k: v for k, v in cfg.items() if k != "type"}}
        check_signature_keys(factory, kwargs, name)
        required = _required(factory)
        missing = [k for k in required if k not in kwargs]
        if missing:
            raise ConfigError(f"{config_path(missing[0])}: required by {name} but missing")
        check_value_types(factory, kwargs, name)
        try:
            return factory(**kwargs)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError, RuntimeError) as exc:
            # a value the signature allows but the component cannot use (widen_factor: 0); --debug
            # shows where it failed
            if os.environ.get("DET_DEBUG") == "1":
                raise
            lines = str(exc).strip().splitlines()
            raise ConfigError(f"{where}: {name} cannot be built from these values: "
                              f"{type(exc).__name__}: {lines[0][:200] if lines else ''}") from exc


# Annotations simple enough to check before calling a constructor ('float', 'int | None', ...).
_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                                               "None": (type(None),)}


def check_value_types(factory: Callable, kwargs: Mapping[str, Any], name: str) -> None:
    """A value whose parameter is annotated with plain types (int, float, bool, str, None and
    unions of them) must be one of them, and a float finite: `widen_factor: "wide"` is an
    error naming the key, not a TypeError deep inside the constructor."""
    import math

    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters
    for key, value in kwargs.items():
        param = params.get(key)
        annotation = param.annotation if param is not None else inspect.Parameter.empty
        if not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", "") if isinstance(annotation, type) else ""
        parts = [p.strip() for p in annotation.split("|")] if annotation else []
        if not parts or any(p not in _SIMPLE_TYPES for p in parts):
            continue
        allowed = tuple(t for p in parts for t in _SIMPLE_TYPES[p])
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if not wrong and isinstance(value, float) and not math.isfinite(value):
            wrong = True
        if wrong:
            raise ConfigError(f"{config_path(key)}: expected {' or '.join(parts)} for {name}, got {value!r}")


def build_list(cfgs: list | None, table: Mapping[str, Callable], key: str = "") -> list:
    """Build each item of a list of component configs (errors name `key.N`)."""
    if cfgs is None:
        return []
    if not isinstance(cfgs, list):
        raise ConfigError(f"{config_path(key)}: expected a list, got {type(cfgs).__name__}")
    with at_path(key):
        return [build(c, table, str(i)) for i, c in enumerate(cfgs)]


def _required(factory: Callable) -> list[str]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    return [
        p.name
        for p in inspect.signature(target).parameters.values()
        if p.name != "self" and p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
