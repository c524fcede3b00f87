"""Assembles the `det` application from one module per command and owns the error convention:
user errors -> one line on stderr, exit 2; internal errors -> one line, exit 1; --debug shows
the traceback."""
from __future__ import annotations

import importlib
import os
import sys
from typing import Optional

import typer

from det.cli.common import err
from det.core.errors import DetError

# One module per command; each exposes `register(app)`. Add a command by adding its module here.
COMMAND_MODULES = [
    "det.cli.analyze_logs",
    "det.cli.analyze_results",
    "det.cli.config",
    "det.cli.confusion_matrix",
    "det.cli.convert",
    "det.cli.eval",
    "det.cli.flops",
    "det.cli.fuse_results",
    "det.cli.infer",
    "det.cli.optimize_anchors",
    "det.cli.synth",
    "det.cli.synth_mot",
    "det.cli.browse",
    "det.cli.mot_search",
    "det.cli.train",
    "det.cli.test",
]

# Old option spellings, kept as hidden aliases: rewritten to the new one with one warning per
# process (docs/cli.md lists them). Keys: top-level command -> {old: new}.
ALIASES: dict[str, dict[str, str]] = {
    "infer": {"-w": "--weights"},
    "test": {"-o": "--out"},
    "fuse-results": {"--weights": "--fusion-weights"},
    "flops": {"--shape": "--img-size"},
    "convert": {"--nproc": "--jobs"},
}


def rewrite_aliases(args: list[str]) -> list[str]:
    """Replace old option spellings of the invoked command by the current ones."""
    from det.cli.common import warn_once

    command = next((a for a in args if not a.startswith("-")), None)
    table = ALIASES.get(command or "", {})
    if not table:
        return args
    out, passthrough = [], False
    for arg in args:
        name, eq, value = arg.partition("=")
        if arg == "--":
            passthrough = True
        if not passthrough and name in table and (not eq or name.startswith("--")):
            warn_once(f"{command} {name}", f"warning: det {command} {name} is now {table[name]}; "
                      f"the old spelling will go away")
            arg = table[name] + (eq + value if eq else "")
        out.append(arg)
    return out


app = typer.Typer(
    name="det",
    help="Object detection, instance segmentation and multi-object tracking.\n\n"
    "Example: det train presets/demo/rtmdet_tiny.yaml --work-dir work_dirs/demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"det {version('det')}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """det: object detection, instance segmentation and tracking from one command line."""
    if debug:
        os.environ["DET_DEBUG"] = "1"  # seen by main() and by worker processes


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point. Usage errors are Typer's (exit 2); DetError -> exit 2 with a
    one-line message; any other exception -> exit 1; --debug or DET_DEBUG=1 re-raises."""
    args = list(sys.argv[1:] if argv is None else argv)
    # --debug is global and accepted anywhere on the line (det config show X --debug).
    if "--debug" in args:
        args = [a for a in args if a != "--debug"]
        os.environ["DET_DEBUG"] = "1"
    debug = os.environ.get("DET_DEBUG") == "1"
    args = rewrite_aliases(args)
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="det")
    except DetError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # e.g. `det ... --format jsonl | head`: the reader left; not an error.
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
