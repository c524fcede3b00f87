"""`det config show|list|validate`: inspect presets."""
from __future__ import annotations

from typing import Optional

import typer
import yaml

from det.cli.common import JsonOption, SetOption, out, overrides, print_json
from det.core.config import list_presets, load_preset
from det.core.config.validate import validate_preset

config_app = typer.Typer(help="Inspect presets: show the resolved YAML, list bundled presets, validate.", no_args_is_help=True)


@config_app.command("show")
def show(
    preset: str = typer.Argument(..., help="A preset file or a bundled preset name."),
    set_: Optional[list[str]] = SetOption,
    json_: bool = JsonOption,
    check: bool = typer.Option(True, "--check/--no-check", help="Build the components first so a misspelt key fails."),
) -> None:
    """Print the fully resolved preset (bases merged, overrides applied), after checking that its
    components build (a misspelt key exits 2 with a suggestion).

    Example: det config show demo/rtmdet_tiny --set train.max_epochs=3
    """
    cfg = load_preset(preset, overrides(set_))
    if check:
        validate_preset(cfg)
    if json_:
        print_json(cfg)
    else:
        out.print(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None).rstrip(), markup=False, highlight=False)


@config_app.command("list")
def list_(json_: bool = JsonOption) -> None:
    """List the bundled presets.

    Example: det config list
    """
    names = list_presets()
    if json_:
        print_json(names)
    else:
        for name in names:
            out.print(name, markup=False, highlight=False)


@config_app.command("validate")
def validate(
    preset: str = typer.Argument(..., help="A preset file or a bundled preset name."),
    strict: bool = typer.Option(False, "--strict", help="Also fail on any key that building the preset never reads."),
    set_: Optional[list[str]] = SetOption,
    json_: bool = JsonOption,
) -> None:
    """Check that a preset resolves and that its components build (no data is read). With
    --strict, a key that nothing reads (a misspelling in a free-form place) fails too.

    Example: det config validate presets/demo/rtmdet_tiny.yaml --strict
    """
    cfg = load_preset(preset, overrides(set_))
    checked = validate_preset(cfg, strict=strict)
    if json_:
        print_json({"preset": preset, "valid": True, "checked": checked, "strict": strict})
    else:
        out.print(f"{preset}: valid ({', '.join(checked) if checked else 'syntax only'})", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config", help="Inspect presets: show, list, validate.")
