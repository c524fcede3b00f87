"""MMDetection-compatibility keys that det accepts and deliberately ignores: all listed here,
each with the reason. Reading one warns once per full preset path; every other preset key
either acts or is rejected."""
from __future__ import annotations

from typing import Any

from det.core.config.build import config_path
from det.core.log import get_logger

# (owner, key) -> why det ignores it; owner "*" means any train_cfg / rcnn stage.
IGNORED: dict[tuple[str, str], str] = {
    ("*", "debug"): "MMDetection's train_cfg debug switch; det has no debug drawing there",
    ("FCOSHead", "assigner"): "FCOS assigns points by regress ranges and centre sampling (MMDetection ignores it too)",
    ("FCOSHead", "allowed_border"): "FCOS has no anchors to filter (MMDetection ignores it too)",
    ("FCOSHead", "pos_weight"): "FCOS weights positives by its losses (MMDetection ignores it too)",
}
_WARNED: set[str] = set()


def drop_ignored(cfg: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """`cfg` without the ignored keys of `owner`, warning once for each (full preset path)."""
    out = dict(cfg or {})
    for key in list(out):
        why = IGNORED.get((owner, key)) or IGNORED.get(("*", key))
        if why is None:
            continue
        out.pop(key)
        path = config_path(key)
        if path not in _WARNED:
            _WARNED.add(path)
            get_logger().warning(f"{path}: ignored by det ({why})")
    return out
