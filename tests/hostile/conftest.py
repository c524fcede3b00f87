"""Helpers shared by the hostile-input tests: every bad input must end as one `error:` line
naming the input, exit code 2, no traceback, and nothing partial on disk."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def assert_user_error(r: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 2, no traceback, exactly one 'error: ...' line that names every one of `names`."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr[-2000:]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def files_under(folder: Path) -> list[str]:
    """Every file and folder below `folder` (empty when it does not exist)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def write_coco(path: Path, images: list[dict], annotations: list[dict], categories: list[dict] | None = None) -> Path:
    cats = [{"id": 1, "name": "a"}] if categories is None else categories
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return path


def image(i: int = 1, name: str = "a.png", w: int = 32, h: int = 32) -> dict:
    return {"id": i, "file_name": name, "width": w, "height": h}


def box(i: int = 1, bbox=(2, 2, 10, 10), img: int = 1, cat: int = 1) -> dict:
    return {"id": i, "image_id": img, "category_id": cat, "bbox": list(bbox), "area": 100.0, "iscrowd": 0}
