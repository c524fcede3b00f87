import json

import yaml


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_help_lists_commands(det):
    r = det("--help")
    assert r.returncode == 0
    assert "config" in r.stdout


def test_show_applies_override_and_json(det, tmp_path):
    base = write(tmp_path / "base.yaml", "model: {type: X, backbone: {depth: 18}}\n")
    top = write(tmp_path / "top.yaml", f"_base_: {base.name}\nmodel: {{neck: 1}}\n")
    r = det("config", "show", top, "--no-check", "--set", "model.backbone.depth=50")
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["model"] == {"type": "X", "backbone": {"depth": 50}, "neck": 1}
    r = det("config", "show", top, "--no-check", "--json")
    assert json.loads(r.stdout)["model"]["backbone"]["depth"] == 18


def test_user_errors_exit_2_with_one_line(det, tmp_path):
    top = write(tmp_path / "top.yaml", "_base_: missing_base.yaml\n")
    r = det("config", "show", top)
    assert r.returncode == 2 and "missing_base.yaml" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    bad = write(tmp_path / "bad.yaml", "a: [1,\n")
    r = det("config", "show", bad)
    assert r.returncode == 2 and "bad.yaml:" in r.stderr and "YAML syntax error" in r.stderr
    r = det("config", "show", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "nope.yaml" in r.stderr
    r = det("config", "show", top, "--no-check", "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_validate_unknown_section(det, tmp_path):
    p = write(tmp_path / "p.yaml", "modle: {type: X}\n")
    r = det("config", "validate", p)
    assert r.returncode == 2 and "did you mean 'model'" in r.stderr


def test_version(det):
    r = det("--version")
    assert r.returncode == 0 and r.stdout.startswith("det ")


def test_show_bundled_preset_with_override_and_misspelt_key(det):
    r = det("config", "show", "demo/rtmdet_tiny", "--set", "train.max_epochs=3")
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["train"]["max_epochs"] == 3
    r = det("config", "show", "demo/rtmdet_tiny", "--set", "model.backbone.widen_factr=0.5")
    assert r.returncode == 2
    assert "model.backbone.widen_factr: unknown key" in r.stderr and "did you mean 'widen_factor'" in r.stderr
