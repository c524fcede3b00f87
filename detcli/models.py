"""`det models list|info|download`: MMDetection's COCO checkpoints by name (the model index)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, out, print_json

models_app = typer.Typer(help="Pretrained models by name: list, info, download (MMDetection's COCO checkpoints).",
                         no_args_is_help=True)


def _ap(value: object) -> str:
    return "-" if value is None else f"{value}"


@models_app.command("list")
def list_(
    family: Optional[str] = typer.Option(None, "--family", help="Only this family (e.g. RTMDet, RetinaNet)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only models for this task: detect, segment or track."),
    json_: bool = JsonOption,
) -> None:
    """Every checkpoint in the index with its published COCO AP, preset and size.

    Example: det models list --family RTMDet
    """
    from det.core.zoo import load_index, select

    rows = select(load_index(), family, task)
    if json_:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} models (COCO AP as published by MMDetection)", title_justify="left")
    for col, justify in (("name", "left"), ("family", "left"), ("tasks", "left"), ("box AP", "right"),
                         ("mask AP", "right"), ("params (M)", "right"), ("det preset", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["name"], str(r.get("family")), ",".join(r.get("tasks") or []), _ap(r.get("box_ap")),
                      _ap(r.get("mask_ap")), _ap(r.get("params_m")), str(r.get("preset")))
    # piped: wide enough for full names (Console.print(width=...) does not widen a Table)
    (out if out.is_terminal else Console(soft_wrap=True, width=250)).print(table)


@models_app.command("info")
def info(
    name: str = typer.Argument(..., help="Model name (MMDetection's config name) or alias."),
    json_: bool = JsonOption,
) -> None:
    """One index entry, plus where its det checkpoint is (or would be) cached.

    Example: det models info rtmdet_tiny_8xb32-300e_coco
    """
    from det.core.zoo import find_model, model_path

    entry = dict(find_model(name))
    path = model_path(entry["name"])
    entry["cache"] = str(path)
    entry["cached"] = path.is_file()
    if json_:
        print_json(entry)
        return
    for key, value in entry.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        out.print(f"{key}: {shown}", markup=False, highlight=False)


@models_app.command("download")
def download(
    names: list[str] = typer.Argument(..., help="One or more model names."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Download (resuming a partial file), check the hash, convert to a det checkpoint with its
    preset, and cache it under $DET_HOME/models (default ~/.cache/det).

    Example: det models download rtmdet_tiny_8xb32-300e_coco
    """
    from det.core.zoo import fetch_model, find_model

    results = [fetch_model(find_model(name), force=force) for name in names]
    if json_:
        print_json(results)
        return
    for r in results:
        out.print(f"{r['file']}" + ("  (cached)" if r.get("cached") else ""), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models", help="Pretrained models by name: list, info, download.")
