"""`model.backbone.init: {type: Pretrained, ...}`: torchvision:// names, cached files, prefixes,
and the offline error naming the URL and the cache path."""
from __future__ import annotations

import socket

import pytest
import torch
import torchvision

from det.core.config import apply_overrides, load_preset
from det.core.errors import ConfigError, DetError
from det.core.models import build_detector
from det.core.zoo.pretrained import checkpoint_url, init_backbone, local_checkpoint


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_torchvision_name_from_the_cache_initialises_resnet(home):
    url = checkpoint_url("torchvision://resnet18")
    assert url.startswith("https://download.pytorch.org/models/resnet18-")
    reference = torchvision.models.resnet18()
    (home / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), home / "checkpoints" / url.rsplit("/", 1)[-1])
    cfg = load_preset("demo/retinanet_r18")
    cfg = apply_overrides(cfg, ["model.backbone.init={type: Pretrained, checkpoint: torchvision://resnet18}"])
    model = build_detector(cfg["model"])
    report = init_backbone(model.backbone, model.backbone_init)
    assert report["unexpected"] == ["fc.bias", "fc.weight"] and report["missing"] == []
    assert torch.equal(model.backbone.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert torch.equal(model.backbone.bn1.running_var, reference.bn1.running_var)


def test_prefix_selects_the_backbone_of_a_detector_checkpoint(home, tmp_path):
    cfg = load_preset("demo/retinanet_r18")
    donor = build_detector(cfg["model"])
    torch.nn.init.normal_(donor.backbone.conv1.weight)
    path = tmp_path / "det.pth"
    torch.save({"state_dict": donor.state_dict()}, path)
    model = build_detector(cfg["model"])
    init_backbone(model.backbone, {"type": "Pretrained", "checkpoint": str(path), "prefix": "backbone."})
    assert torch.equal(model.backbone.conv1.weight, donor.backbone.conv1.weight)
    with pytest.raises(DetError, match="no tensors under the prefix 'neckk.'"):
        init_backbone(model.backbone, {"type": "Pretrained", "checkpoint": str(path), "prefix": "neckk."})


def test_offline_with_an_empty_cache_names_url_and_cache_path(home):
    with socket.socket() as s:  # a port nothing listens on: connection refused, like no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/resnet18-f37072fd.pth"
    with pytest.raises(DetError) as info:
        local_checkpoint(url)
    message = str(info.value)
    assert url in message and str(home / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert info.value.exit_code == 2


def test_init_section_is_validated():
    cfg = load_preset("demo/retinanet_r18")
    bad = apply_overrides(cfg, ["model.backbone.init={type: Pretrained, checkpont: x.pth}"])
    with pytest.raises(ConfigError, match="model.backbone.init.checkpont: unknown key"):
        build_detector(bad["model"])
    assert build_detector(load_preset("faster_rcnn")["model"]).backbone_init["checkpoint"] == "torchvision://resnet50"


def test_timm_name_from_a_file_in_the_cache_initialises_a_timm_backbone(home):
    """timm://NAME loads through timm's own loader from det's cache (no network): the feature
    model's tensors equal the saved classifier's; an unknown name is a config error."""
    timm = pytest.importorskip("timm", reason="timm is the optional extra det[timm]")
    from det.core.models.backbones.timm_backbone import TimmBackbone
    from det.core.zoo.timm_weights import cache_path, timm_source

    full, url = timm_source("test_resnet")
    assert full == "test_resnet.r160_in1k" and url.endswith("/timm/test_resnet.r160_in1k/resolve/main/model.safetensors")
    torch.manual_seed(5)
    reference = timm.create_model("test_resnet")
    path = cache_path(full, url)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path.with_suffix(".pth"))  # any of .safetensors / .pth / .bin
    backbone = TimmBackbone("test_resnet", out_indices=[1, 2, 3])
    report = init_backbone(backbone, {"type": "Pretrained", "checkpoint": "timm://test_resnet"})
    assert report == {"missing": [], "unexpected": [], "mismatched": []}
    own = backbone.state_dict()
    assert torch.equal(own["timm_model.layer2.0.conv2.weight"], reference.state_dict()["layer2.0.conv2.weight"])
    assert torch.equal(own["timm_model.conv1.0.weight"], reference.state_dict()["conv1.0.weight"])
    with pytest.raises(ConfigError, match="timm has no pretrained weights named 'test_resnett'"):
        timm_source("test_resnett")
