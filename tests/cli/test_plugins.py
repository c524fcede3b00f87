"""Plugins from presets: `custom_imports` modules register a backbone and a hook that
`det train` uses; a missing or broken module exits 2 naming it and the preset line."""
from __future__ import annotations

import json
import textwrap

from tests.conftest import REPO, TINY_DEMO_OVERRIDES

PLUGIN = '''
from det.core.engine import Hook
from det.core.models.backbones import CSPNeXt
from det.core.registry import register


@register("backbone", "CountingCSPNeXt")
class CountingCSPNeXt(CSPNeXt):
    """CSPNeXt that counts its forward passes."""

    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


@register("hook")
class RecordIters(Hook):
    def __init__(self, path: str):
        self.path = path

    def after_iter(self, trainer, outputs):
        with open(self.path, "a") as fh:
            fh.write(__import__("json").dumps({"iter": trainer.iter, "backbone": type(trainer.model.backbone).__name__,
                                               "calls": CountingCSPNeXt.calls, "loss": outputs["loss"]}) + "\\n")
'''


def _preset(tmp_path, module: str) -> str:
    path = tmp_path / "plugin_preset.yaml"
    path.write_text(textwrap.dedent(f"""\
        _base_: {REPO / 'presets' / 'demo' / 'rtmdet_tiny.yaml'}
        custom_imports: [{module}]
        model:
          backbone: {{type: CountingCSPNeXt}}
        train:
          hooks: [{{type: RecordIters, path: {tmp_path / 'iters.jsonl'}}}]
        """))
    return str(path)


def _args() -> list[str]:
    out = []
    for item in (*TINY_DEMO_OVERRIDES, "data.train.dataset.num_train=2"):
        out += ["--set", item]
    return out


def test_plugin_backbone_and_hook_are_used_by_det_train(tmp_path, det_inproc, monkeypatch):
    (tmp_path / "det_plugin_t1.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    r = det_inproc("train", _preset(tmp_path, "det_plugin_t1"), "--work-dir", tmp_path / "run", "--device", "cpu",
                   *_args())
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in (tmp_path / "iters.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in recs] == [1]  # one iteration, seen by the plugin hook
    assert recs[0]["backbone"] == "CountingCSPNeXt" and recs[0]["calls"] >= 1


def test_missing_or_broken_plugin_exits_2_naming_module_and_line(tmp_path, det_inproc, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preset = _preset(tmp_path, "det_plugin_absent")
    r = det_inproc("config", "validate", preset)
    assert r.returncode == 2
    assert f"{preset}:2" in r.stderr and "module 'det_plugin_absent' not found" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "det_plugin_broken.py").write_text("raise RuntimeError('boom')\n")
    r = det_inproc("config", "validate", _preset(tmp_path, "det_plugin_broken"))
    assert r.returncode == 2 and "det_plugin_broken' failed to import (RuntimeError: boom)" in r.stderr
