"""A model name -> a det checkpoint on disk: download MMDetection's file into the cache, check its
hash, convert it with `det convert mmdet-weights`'s code onto the entry's preset, and keep the
result under `$DET_HOME/models/NAME.pt` (written atomically)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from det.core.errors import DetError
from det.core.log import get_logger
from det.core.zoo.download import download, hash_prefix_of
from det.core.zoo.index import det_home, find_model


def model_path(name: str) -> Path:
    return det_home() / "models" / f"{name}.pt"


def download_path(entry: dict[str, Any]) -> Path:
    return det_home() / "checkpoints" / str(entry["weights"]).rsplit("/", 1)[-1]


def fetch_model(entry: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Download (resumably) and convert one index entry; a cache hit does nothing.
    -> {name, file, cached, source, ...conversion report}."""
    from det.core.convert.weights import convert_mmdet_weights

    out = model_path(entry["name"])
    if out.is_file() and not force:
        return {"name": entry["name"], "file": str(out), "cached": True}
    raw = download_path(entry)
    if force or not raw.is_file():
        download(str(entry["weights"]), raw, entry.get("hash") or hash_prefix_of(str(entry["weights"])))
    report = convert_mmdet_weights(raw, out, _preset_file(entry), force=True)
    get_logger().info(f"{entry['name']}: {out}")
    return {"name": entry["name"], "cached": False, "source": str(raw), **report}


def _preset_file(entry: dict[str, Any]) -> Path:
    from det.core.config.presets import resolve_preset_path

    if not entry.get("preset"):
        raise DetError(f"{entry['name']}: the index entry names no det preset")
    return resolve_preset_path(str(entry["preset"]))


def resolve_weights(name_or_path: str | Path) -> Path:
    """A checkpoint path as given (when it exists), or the det checkpoint of an index model,
    downloaded and converted on first use. Unknown names raise DetError with the closest names."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    entry = find_model(str(name_or_path))
    return Path(fetch_model(entry)["file"])
