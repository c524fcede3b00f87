"""det's engine: everything a command does, importable without the CLI."""
