"""`det models download` of each family's smallest checkpoint in the shipped index, served with
random weights in MMDetection's layout from a loopback server: downloads, converts, loads."""
from __future__ import annotations

import pytest

from det.core.fileio import load_checkpoint
from det.core.models import build_detector
from det.core.zoo import fetch_model, load_index
from tests.zoo_server import mmdet_checkpoint, write_index, zoo_server  # noqa: F401 - fixture


def smallest_per_family() -> list[dict]:
    best: dict[str, dict] = {}
    for e in load_index():
        if e["family"] not in best or e["params_m"] < best[e["family"]]["params_m"]:
            best[e["family"]] = e
    return sorted(best.values(), key=lambda e: e["family"])


@pytest.mark.slow
def test_smallest_checkpoint_of_each_family(zoo_server, tmp_path, monkeypatch):
    monkeypatch.delenv("DET_ZOO_INDEX", raising=False)
    chosen = smallest_per_family()
    served = []
    for e in chosen:
        stem = e["weights"].rsplit("/", 1)[-1].rsplit("-", 1)[0]
        url, digest = zoo_server.add(stem, mmdet_checkpoint(e["preset"]))
        served.append({**e, "weights": url, "hash": digest})
    monkeypatch.setenv("DET_ZOO_INDEX", str(write_index(tmp_path / "index.yaml", served)))
    monkeypatch.setenv("DET_HOME", str(tmp_path / "home"))
    for e in served:
        report = fetch_model(e)
        assert report["missing"] == [] and report["unmapped"] == [], e["name"]
        ckpt = load_checkpoint(report["file"])
        model = build_detector(ckpt["preset"]["model"])
        result = model.load_state_dict(ckpt["state_dict"], strict=False)
        assert not result.unexpected_keys and all(k.endswith("num_batches_tracked") for k in result.missing_keys)
    assert {e["family"] for e in chosen} >= {"RTMDet", "RetinaNet", "FCOS", "FasterRCNN", "MaskRCNN", "CascadeRCNN"}
