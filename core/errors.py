"""Errors that carry a one-line message for the user.

`DetError` and its subclasses are user errors: the CLI prints the message alone and exits 2.
Anything else escaping a command is an internal error (exit 1, traceback with --debug).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class DetError(Exception):
    """A problem with the user's input (file, field, key or value): exit code 2."""

    exit_code = 2


class ConfigError(DetError):
    """A preset cannot be loaded, merged, overridden or built."""


class DataError(DetError):
    """A dataset or annotation file is missing or malformed."""


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most similar to `name`, or None when nothing is close."""
    candidates = [str(c) for c in candidates]
    by_lower = {c.lower(): c for c in candidates}
    if str(name).lower() in by_lower:  # 'Adamw' -> 'AdamW', not 'Adam'
        return by_lower[str(name).lower()]
    matches = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' when a candidate is close, else a list of the valid names."""
    candidates = sorted({str(c) for c in candidates})
    best = closest(name, candidates)
    if best is not None:
        return f"; did you mean '{best}'?"
    if not candidates:
        return ""
    shown = ", ".join(candidates[:12]) + (", ..." if len(candidates) > 12 else "")
    return f"; valid: {shown}"
