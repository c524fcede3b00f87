"""`det models list|info|download`, `det infer --model`, `det test --model`, `det train --load-from NAME`,
with the index pointed at a loopback server (random weights in MMDetection's layout)."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

from tests.conftest import TINY_DEMO_OVERRIDES
from tests.zoo_server import entry, mmdet_checkpoint, write_index, zoo_server  # noqa: F401 - fixture

NAME = "rtmdet_tiny_8xb32-300e_coco"
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")  # the demo preset's synthetic classes


@pytest.fixture
def zoo_env(zoo_server, tmp_path):
    """Environment for `det` subprocesses: an index with the shipped RTMDet-tiny entry served locally."""
    url, digest = zoo_server.add("rtmdet_tiny_8xb32-300e_coco_20220902_112414", mmdet_checkpoint("rtmdet_tiny"))
    other = entry("retinanet_r50_fpn_1x_coco", "retinanet_r50_fpn", zoo_server.url("r-00000000.pth"), "00000000",
                  family="RetinaNet")
    index = write_index(tmp_path / "index.yaml", [entry(NAME, "rtmdet_tiny", url, digest, aliases=["rtmdet-t"]), other])
    return {"DET_ZOO_INDEX": str(index), "DET_HOME": str(tmp_path / "home")}


def test_models_list_table_and_json(det, zoo_env):
    r = det("models", "list", "--family", "rtmdet", "--json", env=zoo_env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == [NAME] and rows[0]["box_ap"] == 40.9
    table = det("models", "list", env=zoo_env)
    assert NAME in table.stdout and "retinanet_r50_fpn_1x_coco" in table.stdout and "40.9" in table.stdout
    bad = det("models", "list", "--task", "pose", env=zoo_env)
    assert bad.returncode == 2 and "--task" in bad.stderr


def test_models_info_and_unknown_name(det, zoo_env):
    r = det("models", "info", "rtmdet-t", "--json", env=zoo_env)
    info = json.loads(r.stdout)
    assert info["name"] == NAME and info["cached"] is False and info["cache"].endswith(f"models/{NAME}.pt")
    bad = det("models", "info", "rtmdet_tiny_300e", env=zoo_env)
    assert bad.returncode == 2 and f"closest: {NAME}" in bad.stderr and "Traceback" not in bad.stderr


def test_download_then_infer_with_model(det, zoo_env, tmp_path):
    r = det("models", "download", NAME, "--json", env=zoo_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["cached"] is False
    img = tmp_path / "img.jpg"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    r = det("infer", str(img), "--model", NAME, "--out-dir", str(tmp_path / "out"), "--score-thr", "0.0",
            "--format", "jsonl", "--no-vis", env=zoo_env)
    assert r.returncode == 0, r.stderr
    pred = json.loads(r.stdout.splitlines()[0])
    assert pred["width"] == 128 and pred["height"] == 96 and len(pred["labels"]) == len(pred["scores"]) > 0
    assert max(pred["labels"]) < 80
    both = det("infer", str(img), "--model", NAME, "--weights", "x.pt", env=zoo_env)
    assert both.returncode == 2 and "exclude each other" in both.stderr


def test_infer_with_an_unknown_model_exits_2(det, zoo_env, tmp_path):
    img = tmp_path / "img.jpg"
    cv2.imwrite(str(img), np.zeros((32, 32, 3), dtype=np.uint8))
    r = det("infer", str(img), "--model", "rtmdet_tiny_8xb32-300e", env=zoo_env)
    assert r.returncode == 2 and f"closest: {NAME}" in r.stderr


@pytest.mark.slow
def test_train_load_from_a_model_name_skips_the_head(det, zoo_env, tmp_path):
    sets = [a for o in TINY_DEMO_OVERRIDES for a in ("--set", o)]
    r = det("train", "demo/rtmdet_tiny", "--work-dir", str(tmp_path / "wd"), "--load-from", NAME, *sets, env=zoo_env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "mismatched key(s)" in r.stderr and "bbox_head.rtm_cls.0.weight" in r.stderr


@pytest.mark.slow
def test_export_and_serve_take_a_model_name(det, zoo_env, tmp_path):
    out = tmp_path / "m.torchscript"
    r = det("export", "--model", NAME, "--format", "torchscript", "--imgsz", "128", "128", "--out", str(out),
            env=zoo_env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file() and json.loads(out.with_name(out.name + ".det.json").read_text())["classes"]
    bad = det("serve", "--model", "rtmdet_tiny_8xb32-300e", env=zoo_env)
    assert bad.returncode == 2 and f"closest: {NAME}" in bad.stderr
    neither = det("export", env=zoo_env)
    assert neither.returncode == 2 and "--model NAME" in neither.stderr


@pytest.mark.slow
def test_test_with_a_model_name_downloads_converts_and_evaluates(det_inproc, zoo_server, tmp_path, monkeypatch):
    """`det test --model NAME` against the loopback server: the served weights are the ones
    evaluated (same COCO results as `det test` on the converted file), and the index's preset
    (here the demo preset, 6 classes, synthetic data) is the one used."""
    import torch

    from det.core.fileio import load_checkpoint

    served = mmdet_checkpoint("demo/rtmdet_tiny", seed=3, names=SHAPES)
    url, digest = zoo_server.add("demo-tiny_20240101_000000", served)
    index = write_index(tmp_path / "index.yaml", [entry("demo-tiny", "demo/rtmdet_tiny", url, digest)])
    monkeypatch.setenv("DET_ZOO_INDEX", str(index))
    monkeypatch.setenv("DET_HOME", str(tmp_path / "home"))
    sets = [a for o in TINY_DEMO_OVERRIDES for a in ("--set", o)]
    r = det_inproc("test", "--model", "demo-tiny", *sets, "--out", tmp_path / "a.json", "--work-dir", tmp_path / "a",
                   "--no-plots", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    assert [p for p, _ in zoo_server.requests] == [f"/{url.rsplit('/', 1)[-1]}"]
    result = json.loads(r.stdout)
    assert result["num_images"] == 2 and "coco/bbox_mAP" in result["metrics"]
    cached = tmp_path / "home" / "models" / "demo-tiny.pt"
    weights = torch.load(io.BytesIO(served), weights_only=True)["state_dict"]
    state = load_checkpoint(cached)["state_dict"]
    assert torch.equal(state["bbox_head.rtm_cls.0.weight"], weights["bbox_head.rtm_cls.0.weight"])
    r = det_inproc("test", cached, *sets, "--out", tmp_path / "b.json", "--work-dir", tmp_path / "b", "--no-plots",
                   "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((tmp_path / "a.json").read_text())
    assert results and results == json.loads((tmp_path / "b.json").read_text())
    assert len(zoo_server.requests) == 1  # the second run used nothing from the server
    bad = det_inproc("test", "--model", "demo-tin")
    assert bad.returncode == 2 and "closest: demo-tiny" in bad.stderr


@pytest.mark.slow
def test_train_initialises_the_backbone_from_a_url_on_the_loopback_server(det_inproc, zoo_server, tmp_path,
                                                                        monkeypatch):
    """`model.backbone.init: {type: Pretrained, checkpoint: http://127.0.0.1:PORT/...}` through
    `det train` (one iteration): the frozen stem and layer1 end with the served tensors exactly,
    the trained layers within one tiny warm-up step of them; the file lands in the cache."""
    import torch
    import torchvision

    from det.core.fileio import load_checkpoint

    torch.manual_seed(7)
    imagenet = torchvision.models.resnet18().state_dict()
    buffer = io.BytesIO()
    torch.save(imagenet, buffer)
    url, _ = zoo_server.add("resnet18", buffer.getvalue())
    monkeypatch.setenv("DET_HOME", str(tmp_path / "home"))
    sets = [a for o in (*TINY_DEMO_OVERRIDES, "data.train.dataset.num_train=2", "model.backbone.frozen_stages=1",
                        f"model.backbone.init={{type: Pretrained, checkpoint: '{url}'}}") for a in ("--set", o)]
    r = det_inproc("train", "demo/retinanet_r18", "--work-dir", tmp_path / "wd", "--device", "cpu", *sets)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "backbone initialised from http://127.0.0.1" in r.stderr and "unexpected key(s): fc.bias" in r.stderr
    assert (tmp_path / "home" / "checkpoints" / url.rsplit("/", 1)[-1]).is_file()
    state = load_checkpoint(tmp_path / "wd" / "last.pt")["state_dict"]
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer1.1.conv2.weight"):
        assert torch.equal(state[f"backbone.{key}"], imagenet[key]), key
    moved = (state["backbone.layer4.1.conv2.weight"] - imagenet["layer4.1.conv2.weight"]).abs().max()
    assert 0 < moved < 1e-3  # trained one step from the served weights, not from a fresh init


@pytest.mark.slow
def test_train_with_timm_init_offline_exits_2_naming_url_and_cache_path(det, tmp_path):
    """`timm://NAME` with an empty cache and no network (huggingface_hub offline): exit 2, the
    URL and the exact file det looks for are named."""
    env = {"DET_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    r = det("train", "demo/retinanet_r18", "--work-dir", str(tmp_path / "wd"), "--device", "cpu",
            "--set", "model.backbone.init={type: Pretrained, checkpoint: 'timm://resnet18'}", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    message = "".join(r.stderr.split())  # the message may wrap at the terminal width
    assert "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors" in message
    assert str(tmp_path / "home" / "checkpoints" / "timm" / "resnet18.a1_in1k.safetensors") in message
