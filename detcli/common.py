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
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


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
