"""Bundled YAML presets (package data). `det config list` names them."""
