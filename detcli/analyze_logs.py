"""`det analyze-logs plot|train-time|summary`: curves, iteration time and last/best values of
training logs (det log.jsonl, MMDetection 3.x scalars.json, 2.x *.log.json)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from det.cli.common import ForceOption, JsonOption, default_run_dir, err, in_range, out, print_json
from det.core.analysis import logs as L
from det.core.fileio import ensure_new

logs_app = typer.Typer(help="Analyse training logs: plot curves, iteration time, last/best values.",
                       no_args_is_help=True)
LogsArg = typer.Argument(..., help="Training logs: det log.jsonl, MMDetection scalars.json or *.log.json.")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"
    return str(v)


@logs_app.command("plot")
def plot(
    logs: list[Path] = LogsArg,
    keys: Optional[list[str]] = typer.Option(None, "--keys", help="Keys to plot, one panel each (repeat or list). [default: loss]"),
    legend: Optional[list[str]] = typer.Option(None, "--legend", help="A name per log (or per log and key)."),
    title: Optional[str] = typer.Option(None, "--title", help="Figure title."),
    x: str = typer.Option("step", "--x", help="x axis: step (global iteration) or epoch."),
    smooth: int = typer.Option(1, "--smooth", callback=in_range(1), help="Trailing moving average over N points."),
    style: str = typer.Option("darkgrid", "--style", help="seaborn style: white, dark, whitegrid, darkgrid, ticks."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Output figure (.png, .pdf or .svg) [default: runs/analyze-logs/N/analyze_logs.png]."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Plot keys of one or more training logs, one panel per key, runs compared.

    Example: det analyze-logs plot run1/log.jsonl run2/scalars.json --keys loss bbox_mAP --legend a b --out curves.png
    """
    logs, keys, legend = _greedy(logs, keys, legend)
    runs = L.load_logs(logs)
    if out_file is None:
        out_file = default_run_dir("analyze-logs") / "analyze_logs.png"
    ensure_new(out_file, force)
    result = L.plot_logs(runs, _split(keys) or ["loss"], out_file, _split(legend), title, x, smooth, style)
    if json_:
        print_json(result)
    else:
        out.print(f"saved {result['out']}", markup=False, highlight=False)


_VALUE_OPTIONS = {"--title", "--x", "--smooth", "--style", "--out"}
_LIST_OPTIONS = {"--keys", "--legend"}


def _greedy(logs: list[Path], keys: Optional[list[str]], legend: Optional[list[str]]):
    """MMDetection's `--keys a b --legend r1 r2` (nargs='+'): click gives each option its first
    value and the rest to LOGS, so re-read the command line to give them back."""
    argv = sys.argv[1:]
    try:
        start = next(i for i in range(len(argv) - 1) if argv[i] == "analyze-logs" and argv[i + 1] == "plot") + 2
    except StopIteration:
        return logs, keys, legend
    pos: list[str] = []
    lists: dict[str, list[str]] = {"--keys": [], "--legend": []}
    current = None
    tokens = argv[start:]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name = tok.split("=", 1)[0]
        if name in _LIST_OPTIONS:
            current = name
            if "=" in tok:
                lists[name].append(tok.split("=", 1)[1])
        elif name in _VALUE_OPTIONS:
            current = None
            i += 0 if "=" in tok else 1
        elif tok.startswith("-") and len(tok) > 1:
            current = None
        elif current:
            lists[current].append(tok)
        else:
            pos.append(tok)
        i += 1
    if sorted(pos + lists["--keys"][1:] + lists["--legend"][1:]) != sorted(map(str, logs)):
        return logs, keys, legend  # not the command line click parsed (e.g. called from Python)
    return [Path(p) for p in pos], lists["--keys"] or keys, lists["--legend"] or legend


def _split(values: Optional[list[str]]) -> list[str]:
    """Accept both `--keys a --keys b` and `--keys a,b`."""
    return [v for item in values or [] for v in item.split(",") if v]


@logs_app.command("train-time")
def train_time(
    logs: list[Path] = LogsArg,
    include_outliers: bool = typer.Option(False, "--include-outliers", help="Keep the first record of every epoch."),
    json_: bool = JsonOption,
) -> None:
    """Slowest and fastest epoch, std over epochs and average iteration time of each run.

    Example: det analyze-logs train-time work_dirs/demo/log.jsonl
    """
    results = [L.train_time(run, include_outliers) for run in L.load_logs(logs)]
    if json_:
        print_json(results)
        return
    for r in results:
        out.print(f"----- train time of {r['log']} -----", markup=False, highlight=False)
        out.print(f"slowest epoch {r['slowest_epoch']}, average time is {r['slowest_time']:.4f} s/iter", markup=False, highlight=False)
        out.print(f"fastest epoch {r['fastest_epoch']}, average time is {r['fastest_time']:.4f} s/iter", markup=False, highlight=False)
        out.print(f"time std over epochs is {r['std_over_epochs']:.4f}", markup=False, highlight=False)
        out.print(f"average iter time: {r['average_iter_time']:.4f} s/iter", markup=False, highlight=False)


@logs_app.command("summary")
def summary(logs: list[Path] = LogsArg, json_: bool = JsonOption) -> None:
    """Last and best value of every key of each run.

    Example: det analyze-logs summary work_dirs/a/log.jsonl work_dirs/b/log.jsonl --json
    """
    results = [L.summary(run) for run in L.load_logs(logs)]
    if json_:
        print_json(results)
        return
    for r in results:
        table = Table(title=f"{r['log']} ({r['format']}): last and best values (ep = epoch, n = records)")
        table.add_column("key", overflow="fold", min_width=12)
        for col in ("last", "ep", "step", "best", "ep", "step", "n"):
            table.add_column(col, justify="right", overflow="fold")
        for key, row in r["keys"].items():
            table.add_row(key, _fmt(row["last"]), _fmt(row["last_epoch"]), _fmt(row["last_step"]), _fmt(row["best"]),
                          _fmt(row["best_epoch"]), _fmt(row["best_step"]), str(row["count"]))
        out.print(table)
        for key, row in r["keys"].items():
            if row["non_finite"]:
                first = row["first_non_finite"]
                err.print(f"warning: {r['log']}: {key} has {row['non_finite']} non-finite value(s), first "
                          f"{first['value']} at epoch {_fmt(first['epoch'])}, step {_fmt(first['step'])}",
                          markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="analyze-logs", help="Analyse training logs: plot, train-time, summary.")
