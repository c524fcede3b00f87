"""`det config validate --strict`: a key that building the preset never reads fails; every
bundled preset passes; MMDetection keys det ignores warn once with their full path."""
from __future__ import annotations

import pytest

from det.core.config import list_presets, load_preset
from det.core.config.consumed import Tracked, track, unread
from det.core.config.validate import validate_preset
from det.core.errors import ConfigError
from tests.conftest import REPO


def test_tracked_records_reads_not_key_checks():
    cfg = track({"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 4}], "g": 5})
    assert isinstance(cfg, dict) and isinstance(cfg["b"], Tracked)
    assert [k for k in cfg if k not in "abeg"] == []  # iterating keys to check them reads nothing
    copied = dict(cfg["b"])  # dict(...) passes every value on: all read
    assert copied == {"c": 2, "d": 3}
    cfg["e"][0].get("f")
    assert cfg["a"] == 1
    assert unread(cfg) == ["g"]


PLUGIN_HOOK = """
from det.core.engine import Hook
from det.core.registry import register


@register("hook")
class EveryN(Hook):
    def __init__(self, schedule: dict):
        self.every = schedule["every"]  # 'offset' is never read
"""


def test_strict_fails_on_an_unread_key_in_a_preset(tmp_path, det_inproc, monkeypatch):
    (tmp_path / "det_strict_plugin.py").write_text(PLUGIN_HOOK)
    monkeypatch.syspath_prepend(str(tmp_path))
    preset = tmp_path / "p.yaml"
    preset.write_text(f"_base_: {REPO / 'presets' / 'demo' / 'rtmdet_tiny.yaml'}\ncustom_imports: [det_strict_plugin]\n"
                      "train:\n  hooks: [{type: EveryN, schedule: {every: 2, offset: 1}}]\n")
    assert det_inproc("config", "validate", preset).returncode == 0
    r = det_inproc("config", "validate", preset, "--strict")
    assert r.returncode == 2 and "train.hooks.0.schedule.offset: never read while building the preset" in r.stderr, r.stderr


def test_infer_section_keys_are_checked(tmp_path, det_inproc):
    preset = tmp_path / "p.yaml"
    preset.write_text(f"_base_: {REPO / 'presets' / 'demo' / 'rtmdet_tiny.yaml'}\ninfer:\n  scor_thr: 0.5\n")
    r = det_inproc("config", "validate", preset)
    assert r.returncode == 2 and "infer.scor_thr: unknown key; did you mean 'score_thr'?" in r.stderr, r.stderr
    preset.write_text(f"_base_: {REPO / 'presets' / 'demo' / 'rtmdet_tiny.yaml'}\ninfer:\n  score_thr: 2\n")
    r = det_inproc("config", "validate", preset)
    assert r.returncode == 2 and "infer.score_thr: expected a number >= 0 and <= 1, got 2" in r.stderr, r.stderr
    preset.write_text(f"_base_: {REPO / 'presets' / 'demo' / 'rtmdet_tiny.yaml'}\n"
                      "infer:\n  score_thr: 0.5\n  format: jsonl\n  classes: [circle]\n")
    assert det_inproc("config", "validate", preset, "--strict").returncode == 0


@pytest.mark.parametrize("name", [n for n in list_presets()])
def test_every_bundled_preset_passes_strict(name, det_inproc):
    r = det_inproc("config", "validate", name, "--strict", "--json")
    assert r.returncode == 0, r.stderr


def test_ignored_mmdetection_keys_warn_once_with_their_path(caplog):
    from det.core.config import compat

    compat._WARNED.clear()
    cfg = load_preset("retinanet_r50_fpn")
    validate_preset(cfg)
    validate_preset(cfg)
    hits = [r.getMessage() for r in caplog.records if "ignored by det" in r.getMessage()]
    assert hits == ["model.train_cfg.debug: ignored by det (MMDetection's train_cfg debug switch; det has no "
                    "debug drawing there)"]


def test_accepted_then_ignored_keys_now_act_or_fail():
    cfg = load_preset("mask_rcnn")
    cfg["model"]["roi_head"]["mask_head"]["loss_mask"]["use_mask"] = False
    with pytest.raises(ConfigError, match="model.roi_head.mask_head.loss_mask: the mask loss is per-pixel"):
        validate_preset(cfg)
    cfg = load_preset("faster_rcnn", ["model.train_cfg.rcnn.pos_weight=2.0"])
    with pytest.raises(ConfigError, match="model.train_cfg.rcnn.pos_weight: det weighs every sampled RoI 1"):
        validate_preset(cfg)
    cfg = load_preset("demo/rtmdet_tiny", ["train.checkpoint.by_epoch=false"])
    with pytest.raises(ConfigError, match="train.checkpoint.by_epoch: False but training is epoch-based"):
        validate_preset(cfg)
    cfg = load_preset("demo/rtmdet_tiny", ["train.ema.momentun=0.1"])
    with pytest.raises(ConfigError, match="train.ema.momentun: unknown key; did you mean 'momentum'"):
        validate_preset(cfg)
