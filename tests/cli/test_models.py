"""`det models list|info|download`, `det infer --model`, `det test --model`, `det train --load-from NAME`,
with the index pointed at a loopback server (random weights in MMDetection's layout)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.conftest import TINY_DEMO_OVERRIDES
from tests.zoo_server import entry, mmdet_checkpoint, write_index, zoo_server  # noqa: F401 - fixture

NAME = "rtmdet_tiny_8xb32-300e_coco"


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
