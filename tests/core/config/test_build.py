import pytest

from det.core.config import build, build_list
from det.core.errors import ConfigError


class Backbone:
    def __init__(self, depth: int, frozen_stages: int = -1):
        self.depth, self.frozen_stages = depth, frozen_stages


class Detector:
    def __init__(self, backbone: dict, num_classes: int = 80):
        self.backbone = build(backbone, BACKBONES, "backbone")
        self.num_classes = num_classes


BACKBONES = {"ResNet": Backbone}
DETECTORS = {"Det": Detector}


def test_build_nested():
    det = build({"type": "Det", "backbone": {"type": "ResNet", "depth": 50}}, DETECTORS, "model")
    assert det.backbone.depth == 50 and det.num_classes == 80


def test_unknown_key_names_full_path_and_suggestion():
    with pytest.raises(ConfigError) as info:
        build({"type": "Det", "backbone": {"type": "ResNet", "dpeth": 50}}, DETECTORS, "model")
    assert str(info.value).startswith("model.backbone.dpeth: unknown key")
    assert "did you mean 'depth'?" in str(info.value)


def test_unknown_type_suggests():
    with pytest.raises(ConfigError, match=r"model\.backbone\.type: unknown type 'ResNte'; did you mean 'ResNet'"):
        build({"type": "Det", "backbone": {"type": "ResNte", "depth": 1}}, DETECTORS, "model")


def test_missing_required_and_missing_type():
    with pytest.raises(ConfigError, match=r"model\.backbone\.depth: required"):
        build({"type": "Det", "backbone": {"type": "ResNet"}}, DETECTORS, "model")
    with pytest.raises(ConfigError, match=r"model\.type: missing"):
        build({"backbone": {}}, DETECTORS, "model")


def test_build_list_indexes_paths():
    with pytest.raises(ConfigError, match=r"pipeline\.1\.dpth"):
        build_list([{"type": "ResNet", "depth": 1}, {"type": "ResNet", "dpth": 1}], BACKBONES, "pipeline")


def test_suggestion_prefers_case_insensitive_match():
    from det.core.errors import did_you_mean

    assert did_you_mean("Adamw", ["Adam", "AdamW", "SGD"]) == "; did you mean 'AdamW'?"
