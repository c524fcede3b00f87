"""Model zoo downloads against a loopback server: cache hit, resume, wrong hash, 404, conversion."""
from __future__ import annotations

import hashlib

import pytest
import torch

from det.core.errors import DetError
from det.core.fileio import load_checkpoint
from det.core.zoo import fetch_model, find_model, load_index, model_path, resolve_weights
from det.core.zoo.download import download, hash_prefix_of
from tests.zoo_server import entry, mmdet_checkpoint, write_index, zoo_server  # noqa: F401 - fixture

PRESET = "presets/_base_/models/rtmdet_tiny_coco.yaml"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny_ckpt() -> bytes:
    return mmdet_checkpoint(PRESET)


def test_hash_prefix_from_file_name():
    assert hash_prefix_of("https://x/rtmdet_tiny_8xb32-300e_coco_20220902_112414-78e30dcc.pth") == "78e30dcc"
    assert hash_prefix_of("https://x/model.pth") is None


def test_download_converts_and_hits_the_cache(zoo_server, home, tiny_ckpt, tmp_path, monkeypatch):
    url, digest = zoo_server.add("rtmdet_tiny_coco_20220902", tiny_ckpt)
    monkeypatch.setenv("DET_ZOO_INDEX", str(write_index(tmp_path / "index.yaml",
                                                        [entry("tiny", "rtmdet_tiny", url, digest)])))
    first = fetch_model(find_model("tiny"))
    assert first["cached"] is False and first["file"] == str(model_path("tiny"))
    ckpt = load_checkpoint(first["file"])
    assert ckpt["preset"]["model"]["type"] == "RTMDet" and len(ckpt["meta"]["classes"]) == 80
    src = torch.load(home / "checkpoints" / url.rsplit("/", 1)[-1], weights_only=True)["state_dict"]
    key = "bbox_head.rtm_cls.0.weight"
    assert torch.equal(ckpt["state_dict"][key], src[key])
    assert not any(k.startswith("ema_") for k in ckpt["state_dict"])  # MMDetection's EMA copy dropped
    assert fetch_model(find_model("tiny"))["cached"] is True
    assert resolve_weights("tiny") == model_path("tiny")
    assert len(zoo_server.requests) == 1
    assert not list(home.rglob("*.part"))


def test_resume_after_the_server_cuts_the_transfer(zoo_server, tmp_path, tiny_ckpt):
    url, digest = zoo_server.add("model", tiny_ckpt)
    zoo_server.cut.add("/" + url.rsplit("/", 1)[-1])
    out = download(url, tmp_path / "model.pth", digest)
    assert out.read_bytes() == tiny_ckpt
    (_, first_range), (_, second_range) = zoo_server.requests
    assert first_range is None and second_range == f"bytes={len(tiny_ckpt) // 2}-"
    assert not (tmp_path / "model.pth.part").exists()


def test_a_cut_download_resumes_on_the_next_run(zoo_server, tmp_path, tiny_ckpt):
    url, digest = zoo_server.add("model", tiny_ckpt)
    zoo_server.cut.add("/" + url.rsplit("/", 1)[-1])
    with pytest.raises(DetError, match="rerun to resume"):
        download(url, tmp_path / "model.pth", digest, retries=1)
    assert not (tmp_path / "model.pth").exists()  # nothing partial under the final name
    assert (tmp_path / "model.pth.part").stat().st_size == len(tiny_ckpt) // 2
    download(url, tmp_path / "model.pth", digest)
    assert hashlib.sha256((tmp_path / "model.pth").read_bytes()).hexdigest().startswith(digest)
    assert zoo_server.requests[-1][1] == f"bytes={len(tiny_ckpt) // 2}-"


def test_wrong_hash_deletes_the_download(zoo_server, home, tmp_path, tiny_ckpt, monkeypatch):
    url, digest = zoo_server.add("model", tiny_ckpt)
    wrong = "0" * 8 if digest != "0" * 8 else "1" * 8
    monkeypatch.setenv("DET_ZOO_INDEX", str(write_index(tmp_path / "i.yaml", [entry("m", "rtmdet_tiny", url, wrong)])))
    with pytest.raises(DetError, match=f"does not match the expected {wrong}") as info:
        resolve_weights("m")
    assert info.value.exit_code == 2
    assert not list(home.rglob("*.pth*")) and not model_path("m").exists()


def test_missing_file_is_a_user_error(zoo_server, home, tmp_path, monkeypatch):
    url = zoo_server.url("gone-12345678.pth")
    monkeypatch.setenv("DET_ZOO_INDEX", str(write_index(tmp_path / "i.yaml", [entry("m", "rtmdet_tiny", url, "12345678")])))
    with pytest.raises(DetError, match="HTTP 404"):
        resolve_weights("m")
    assert not list(home.rglob("*.pth*"))


def test_unknown_name_lists_the_closest(monkeypatch):
    monkeypatch.delenv("DET_ZOO_INDEX", raising=False)
    with pytest.raises(DetError, match="closest: rtmdet_tiny_8xb32-300e_coco"):
        resolve_weights("rtmdet_tiny_8xb32-300e")
    assert find_model("rtmdet-t")["name"] == "rtmdet_tiny_8xb32-300e_coco"  # MMDetection's alias


# where MMDetection's metafiles publish weights (DINO Swin-L 36e: a GitHub release)
HOSTS = ("https://download.openmmlab.com/", "https://github.com/RistoranteRist/mmlab-weights/releases/")


def test_shipped_index_is_consistent(monkeypatch):
    """Every entry: a bundled preset, a hash prefix matching its URL, a task, a published AP."""
    from det.core.config.presets import resolve_preset_path

    monkeypatch.delenv("DET_ZOO_INDEX", raising=False)
    entries = load_index()
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names))
    for e in entries:
        assert resolve_preset_path(e["preset"]).is_file()
        assert e["hash"] == hash_prefix_of(e["weights"]) and e["weights"].startswith(HOSTS)
        assert e["tasks"] and e["params_m"] > 0
        assert e["box_ap"] > 0 if "detect" in e["tasks"] else e["box_ap"] is None  # SOLOv2 publishes no box AP
        assert ("segment" in e["tasks"]) == (e["mask_ap"] is not None)
    families = {e["family"] for e in entries}
    assert {"RTMDet", "RetinaNet", "FCOS", "FasterRCNN", "MaskRCNN", "CascadeRCNN"} <= families
