"""`det infer --track NAME|PRESET --set tracker.KEY=V`: the tracker section that inference uses,
from the same tracker presets (`presets/trackers/*.yaml`) that `det mot-search` searches, so
the `best: --set ...` line mot-search prints applies as printed."""
from __future__ import annotations

from typing import Any

from det.core.errors import ConfigError

TRACKER_NAMES = {"bytetrack": "ByteTrack", "sort": "SORT", "ocsort": "OCSORT"}
LOW_SCORE_KEYS = ("low_score_thr", "obj_score_thr", "init_track_thr", "score_thr")


def split_tracker_sets(sets: list[str]) -> tuple[list[str], list[str]]:
    """(overrides for the detector preset, overrides of `tracker.*`)."""
    tracker = [s for s in sets if s.split("=", 1)[0].strip().startswith("tracker.")]
    return [s for s in sets if s not in tracker], tracker


def resolve_tracker(track: str, checkpoint_section: Any, sets: list[str]) -> dict:
    """The tracker section for `--track`: a tracker name uses `presets/trackers/NAME.yaml`
    (updated by the checkpoint's own tracker section when it configures the same type); any
    other value is a preset file or bundled name holding a `tracker` section. `sets` are
    `tracker.KEY=V` overrides applied last."""
    from det.core.config import apply_overrides, load_preset, merge

    name = track.lower()
    if name in TRACKER_NAMES:
        section = load_preset(f"trackers/{name}")["tracker"]
        if isinstance(checkpoint_section, dict) and checkpoint_section.get("type") == section["type"]:
            section = merge(section, checkpoint_section)
    else:
        section = load_preset(track).get("tracker")
        if not isinstance(section, dict) or not section:
            raise ConfigError(f"--track {track}: no `tracker` section (a tracker name: "
                              f"{', '.join(TRACKER_NAMES)}, or a preset with a tracker section)")
    for text in sets:
        if "[" in text.split("=", 1)[-1] and text.split("=", 1)[0].strip() != "tracker.motion":
            _reject_grid(text)
    return apply_overrides({"tracker": dict(section)}, sets)["tracker"]


def _reject_grid(text: str) -> None:
    """A list value is a mot-search grid, not one setting."""
    import yaml

    value = yaml.safe_load(text.split("=", 1)[1])
    if isinstance(value, list):
        raise ConfigError(f"--set {text}: a list is a mot-search grid; det infer takes one value per key")


def detection_floor(section: dict, score_thr: float) -> float:
    """Detections below the tracker's lowest score threshold are never used; detections above
    it are (ByteTrack's second association uses low-score boxes), so the detector keeps boxes
    down to min(score_thr, that threshold)."""
    values = [float(section[k]) for k in LOW_SCORE_KEYS if isinstance(section.get(k), (int, float))]
    return min([score_thr, *values]) if values else score_thr
