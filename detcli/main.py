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
from det.core.fileio import first_line

# One module per command; each exposes `register(app)`. Add a command by adding its module here.
COMMAND_MODULES = [
    "det.cli.analyze_logs",
    "det.cli.analyze_results",
    "det.cli.config",
    "det.cli.confusion_matrix",
    "det.cli.convert",
    "det.cli.eval",
    "det.cli.export",
    "det.cli.flops",
    "det.cli.fuse_results",
    "det.cli.infer",
    "det.cli.models",
    "det.cli.optimize_anchors",
    "det.cli.synth",
    "det.cli.synth_mot",
    "det.cli.browse",
    "det.cli.mot_search",
    "det.cli.serve",
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
    one-line message; an OS error on a named path -> exit 2; any other exception -> exit 1;
    --debug or DET_DEBUG=1 also prints the traceback (same exit code)."""
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
        _fail(f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}", exc.exit_code, debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # e.g. `det ... --format jsonl | head`: the reader left; not an error.
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        message = os_error_message(exc)
        _fail(message or f"internal error: {first_line(exc)} (rerun with --debug for the traceback)",
              2 if message else 1, debug)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        _fail(f"internal error: {first_line(exc)} (rerun with --debug for the traceback)", 1, debug)


def os_error_message(exc: OSError) -> str | None:
    """An OS error on a named path (missing, a folder, read-only, full disk) is the user's to fix:
    'error: PATH: cause'. Without a path it stays an internal error."""
    import errno

    if exc.filename is None:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a write that fills the disk names no path
            return f"error: {exc.strerror or 'no space left on device'} (free some space and run again)"
        return None
    cause = exc.strerror or type(exc).__name__
    target = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    return f"error: {exc.filename}{target}: {cause}"


def _fail(message: str, code: int, debug: bool) -> None:
    """One line on stderr and the exit code; --debug adds the traceback but keeps the code."""
    if debug:
        import traceback

        traceback.print_exc()
    print(message, file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
