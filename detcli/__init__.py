"""The `det` command line: Typer commands that parse arguments, call det.core and render results."""
