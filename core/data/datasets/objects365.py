"""Objects365 v2 (COCO-format JSON: `zhiyuan_objv2_{train,val}.json`)."""
from __future__ import annotations

import posixpath
from typing import Any

from det.core.data.datasets.coco import CocoDataset

# Images MMDetection leaves out of Objects365 v2 (unreadable files in the release).
IGNORED = {"patch16/objects365_v2_00908726.jpg", "patch6/objects365_v1_00320532.jpg",
           "patch6/objects365_v1_00320534.jpg"}


class Objects365V2Dataset(CocoDataset):
    """Objects365 v2 as MMDetection's Objects365V2Dataset: each `file_name`
    (`images/v1/patch8/objects365_v1_00420917.jpg`) becomes `patch8/objects365_v1_00420917.jpg` under
    `data_prefix`, and the three broken images of the release are skipped (with their boxes)."""

    def load_raw(self) -> Any:
        raw = super().load_raw()
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), list):
            return raw
        dropped = set()
        for img in raw["images"]:
            if isinstance(img, dict) and isinstance(img.get("file_name"), str):
                folder, base = posixpath.split(img["file_name"].replace("\\", "/"))
                img["file_name"] = posixpath.join(posixpath.basename(folder), base)
                if img["file_name"] in IGNORED:
                    dropped.add(img.get("id"))
        if dropped:
            raw["images"] = [i for i in raw["images"] if i.get("id") not in dropped]
            raw["annotations"] = [a for a in raw.get("annotations", []) if a.get("image_id") not in dropped]
        return raw
