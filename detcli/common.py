"""Conventions shared by every command: consoles, the --set option, output files, errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console


# Results go to stdout; progress, warnings and errors go to stderr so pipelines stay clean.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

SetOption = typer.Option(
    None,
    "--set",
    "-s",
    help="Override a preset key, e.g. --set model.backbone.depth=50 or "
    "--set data.train.pipeline.2.scale=[640,640] (value parsed as YAML). Repeatable.",
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
ForceOption = typer.Option(False, "--force", "-f", help="Overwrite existing output files.")


def print_json(obj: Any) -> None:
    """Write JSON to stdout without rich markup."""
    from det.core.fileio import strict_json

    sys.stdout.write(json.dumps(strict_json(_plain(obj)), indent=2, allow_nan=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _plain(obj: Any) -> Any:
    """numpy scalars and arrays as Python values (so NaN inside them becomes null too)."""
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _plain(obj.tolist())
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def fmt_metric(value: Any) -> str:
    """det's one decimal convention for metrics on the console: 3 decimals, '-' when undefined."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return "-" if not math.isfinite(value) or value < 0 else f"{value:.3f}"


def overrides(values: Optional[list[str]]) -> list[str]:
    return list(values or [])


ModelOption = typer.Option(None, "--model", help="A model name from `det models list` (downloaded and converted on "
                           "first use) instead of --weights.")


def weights_or_model(weights: Optional[Path], model: Optional[str]) -> Path:
    """The checkpoint to use: --weights PATH, or the cached det checkpoint of --model NAME."""
    from det.core.errors import DetError

    if weights is not None and model is not None:
        raise DetError("--weights and --model exclude each other")
    if model is not None:
        from det.core.zoo import resolve_weights

        return resolve_weights(model)
    if weights is None:
        raise DetError("give --weights CKPT or --model NAME (see det models list)")
    return weights


def default_run_dir(command: str) -> Path:
    """`runs/<command>/<n>` for a command's outputs when no path was given; said on stderr."""
    from det.core.fileio import new_run_dir

    path = new_run_dir(command)
    err.print(f"outputs: {path}", markup=False, highlight=False)
    return path


_WARNED: set[str] = set()


def renamed(old: str, new: str, old_value: Any, new_value: Any, convert: Any = None) -> Any:
    """Resolve a hidden old spelling of an option: its value (through `convert`) when given,
    with one warning per process naming the new spelling; else the new option's value."""
    if old_value is None or old_value == () or old_value == []:
        return new_value
    warn_once(old, f"warning: {old} is now {new}; the old spelling will go away")
    return convert(old_value) if convert else old_value


def warn_once(key: str, message: str) -> None:
    """Print `message` on stderr the first time `key` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        err.print(message, markup=False, highlight=False)


def in_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """A Typer callback that accepts finite numbers in [lo, hi] (open ends with `lo_open` /
    `hi_open`), a list of them, or None; anything else is a one-line DetError (exit 2) naming
    the option. Typer's own min/max let NaN through."""
    import math

    from det.core.errors import DetError

    def describe() -> str:
        left = "any" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
        right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
        return " and ".join(p for p in (left if lo is not None else "", right) if p) or "finite"

    def ok(v: float) -> bool:
        if not math.isfinite(v):
            return False
        if lo is not None and (v < lo or (lo_open and v == lo)):
            return False
        return hi is None or not (v > hi or (hi_open and v == hi))

    def check(ctx: typer.Context, param: Any, value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is not None and not ok(float(v)):
                raise DetError(f"{param.opts[0]}: expected a number {describe()}, got {v}")
        return value

    return check
