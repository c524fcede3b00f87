"""Pretrained models by name: the index (`presets/zoo/index.yaml`), downloads into `$DET_HOME`,
conversion to det checkpoints. `resolve_weights(name_or_path)` is the one call commands use."""
from det.core.zoo.fetch import fetch_model, model_path, resolve_weights
from det.core.zoo.index import det_home, find_model, load_index, select

__all__ = ["det_home", "fetch_model", "find_model", "load_index", "model_path", "resolve_weights", "select"]
