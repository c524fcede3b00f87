from pathlib import Path

import pytest

from det.core.config import apply_overrides, load_preset, merge
from det.core.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_three_level_inheritance(tmp_path):
    write(tmp_path / "a.yaml", "model: {type: A, depth: 18, width: 1}\ntrain: {lr: 0.1}\n")
    write(tmp_path / "sub/b.yaml", "_base_: ../a.yaml\nmodel: {depth: 50}\n")
    c = write(tmp_path / "sub/deeper/c.yaml", "_base_: ../b.yaml\ntrain: {lr: 0.01, epochs: 3}\n")
    cfg = load_preset(c)
    assert cfg == {"model": {"type": "A", "depth": 50, "width": 1}, "train": {"lr": 0.01, "epochs": 3}}


def test_list_bases_merge_in_order(tmp_path):
    write(tmp_path / "x.yaml", "a: 1\nb: {c: 1, d: 1}\n")
    write(tmp_path / "y.yaml", "b: {c: 2}\ne: [1, 2]\n")
    top = write(tmp_path / "top.yaml", "_base_: [x.yaml, y.yaml]\ne: [3]\n")
    assert load_preset(top) == {"a": 1, "b": {"c": 2, "d": 1}, "e": [3]}


def test_delete_replaces_instead_of_merging(tmp_path):
    write(tmp_path / "base.yaml", "model: {backbone: {type: ResNet, depth: 50, frozen_stages: 1}}\n")
    top = write(tmp_path / "top.yaml", "_base_: base.yaml\nmodel: {backbone: {_delete_: true, type: CSPNeXt, widen: 0.5}}\n")
    assert load_preset(top)["model"]["backbone"] == {"type": "CSPNeXt", "widen": 0.5}


def test_cycle_is_detected_and_named(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\nx: 1\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\ny: 1\n")
    with pytest.raises(ConfigError, match=r"_base_ cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_preset(tmp_path / "a.yaml")


def test_missing_base_names_the_file(tmp_path):
    top = write(tmp_path / "top.yaml", "_base_: nothere.yaml\n")
    with pytest.raises(ConfigError, match="nothere.yaml"):
        load_preset(top)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = write(tmp_path / "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: YAML syntax error"):
        load_preset(bad)


def test_list_item_override_parses_yaml():
    cfg = {"train": {"pipeline": [{"type": "Load"}, {"type": "Flip"}, {"type": "Resize", "scale": [1, 1]}]}}
    out = apply_overrides(cfg, ["train.pipeline.2.scale=[640,640]", "train.pipeline.1.prob=0.5", "train.lr=1e-3"])
    assert out["train"]["pipeline"][2]["scale"] == [640, 640]
    assert out["train"]["pipeline"][1]["prob"] == 0.5
    assert out["train"]["lr"] == 1e-3
    assert cfg["train"]["pipeline"][2]["scale"] == [1, 1], "overrides must not mutate the input"


def test_override_errors():
    cfg = {"train": {"pipeline": [1, 2]}, "model": {"backbone": {"depth": 1}}}
    with pytest.raises(ConfigError, match="index out of range"):
        apply_overrides(cfg, ["train.pipeline.5=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides(cfg, ["train.lr"])
    with pytest.raises(ConfigError, match="did you mean 'backbone'"):
        apply_overrides(cfg, ["model.backbon.depth=2"])
    with pytest.raises(ConfigError, match="list index expected"):
        apply_overrides(cfg, ["train.pipeline.x=1"])


def test_merge_keeps_inputs_untouched():
    a = {"x": {"y": 1}}
    b = {"x": {"z": 2}}
    assert merge(a, b) == {"x": {"y": 1, "z": 2}}
    assert a == {"x": {"y": 1}} and b == {"x": {"z": 2}}


def test_exponent_floats_are_numbers(tmp_path):
    p = write(tmp_path / "p.yaml", "lr: 1e-3\nname: 1e3x\n")
    assert load_preset(p) == {"lr": 1e-3, "name": "1e3x"}
