"""Which preset keys building a preset actually read (`det config validate --strict`).

`track(cfg)` returns the preset as `Tracked` mappings (dict subclasses, so every builder takes
them unchanged) that remember each key read through `[]`, `get`, `pop`, `setdefault`,
`items`, `values`, `dict(...)` or `{**...}`. Iterating over the keys alone (to check them)
does not count as reading. Copies (`copy.deepcopy`, `.copy()`) share the record.
`unread(tracked)` lists the dotted paths of keys never read.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any


class Tracked(dict):
    """A dict that records the keys read from it."""

    def __init__(self, data: dict, read: set | None = None) -> None:
        super().__init__(data)
        self._read: set = set() if read is None else read

    def _mark(self, key: Any) -> None:
        self._read.add(key)

    def __getitem__(self, key: Any) -> Any:
        self._mark(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._mark(key)
        return super().get(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self._mark(key)
        return super().pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._mark(key)
        return super().setdefault(key, default)

    def items(self) -> Any:
        self._read.update(super().keys())
        return super().items()

    def values(self) -> Any:
        self._read.update(super().keys())
        return super().values()

    def __iter__(self) -> Iterator[Any]:
        # Defined so that dict(x) and {**x} go through keys() and __getitem__ (and record).
        return super().__iter__()

    def copy(self) -> "Tracked":
        return Tracked(dict(super().items()), self._read)

    def __deepcopy__(self, memo: dict) -> "Tracked":
        return Tracked({k: copy.deepcopy(v, memo) for k, v in super().items()}, self._read)


def track(value: Any) -> Any:
    """The preset with every mapping (also inside lists) made a Tracked."""
    if isinstance(value, dict):
        return Tracked({k: track(v) for k, v in dict.items(value)})
    if isinstance(value, list):
        return [track(v) for v in value]
    return value


def mark_all(value: Any) -> None:
    """Count a whole subtree as read (sections that are free-form by design, such as `meta`)."""
    if isinstance(value, Tracked):
        for v in value.values():
            mark_all(v)
    elif isinstance(value, list):
        for v in value:
            mark_all(v)


def unread(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the keys never read (children of unread keys are not listed)."""
    out: list[str] = []
    if isinstance(value, Tracked):
        for key, child in dict.items(value):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in value._read:
                out.append(path)
            else:
                out += unread(child, path)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += unread(child, f"{prefix}.{i}")
    return out
