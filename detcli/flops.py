"""`det flops`: parameters, MACs and FLOPs of a preset's model."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from det.cli.common import JsonOption, SetOption, in_range, out, overrides, print_json


def _si(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3f} {unit}"
    return f"{n:.0f}"


def flops(
    preset: str = typer.Argument(..., help="A preset file or bundled preset name."),
    shape: tuple[int, int] = typer.Option((1280, 800), "--img-size", callback=in_range(32), help="Input height and width (H W)."),
    depth: int = typer.Option(2, "--depth", callback=in_range(0), help="Module depth of the per-module table."),
    set_: Optional[list[str]] = SetOption,
    json_: bool = JsonOption,
) -> None:
    """Count parameters, MACs and FLOPs of the model's forward pass (torch.utils.flop_counter).

    MMDetection's get_flops prints "Flops" that are multiply-accumulates: compare them with MACs
    (= FLOPs / 2). Only convolutions and matrix products are counted; other ops are listed.

    Example: det flops rtmdet_tiny --img-size 640 640 --depth 2
    """
    from det.core.analysis.flops import count_preset

    res = count_preset(preset, overrides(set_), shape, depth)
    if json_:
        print_json(res)
        return
    table = Table(title=f"{res['model']} at input {res['input_shape']}")
    for col in ("module", "type", "params", "MACs", "FLOPs", "% FLOPs"):
        table.add_column(col, justify="left" if col in ("module", "type") else "right", overflow="fold")
    for row in res["modules"]:
        table.add_row(row["module"], row["type"], _si(row["params"]), _si(row["macs"]), _si(row["flops"]), f"{row['flops_pct']:.1f}")
    out.print(table)
    out.print(f"params: {res['params'] / 1e6:.3f} M", markup=False, highlight=False)
    out.print(f"MACs:   {res['macs'] / 1e9:.3f} G   (MMDetection's \"Flops\" are MACs)", markup=False, highlight=False)
    out.print(f"FLOPs:  {res['flops'] / 1e9:.3f} G   (2 per multiply-accumulate)", markup=False, highlight=False)
    if res["uncounted_ops"]:
        ops = ", ".join(f"{k} x{v}" for k, v in res["uncounted_ops"].items())
        out.print(f"not counted (no FLOP formula in torch.utils.flop_counter): {ops}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("flops")(flops)
