"""One option vocabulary (docs/cli.md), checked on every command the Typer app has, whatever
commands exist: one long option per short option, shared options with their documented short
form, one image-size option in H W order, `--device` defaulting to auto, a data output for every
command, and the hidden old spellings warning once."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import typer

from det.cli.main import ALIASES, app

REPO = Path(__file__).resolve().parents[2]
OUTPUT_OPTIONS = {"--json", "--out", "--out-dir", "--work-dir", "--plot", "--out-video", "--out-mot", "--save-vis"}
OUTPUT_ARGUMENTS = {"out_dir", "out", "output", "out_file", "dst"}


def _leaves(cmd, path: str = "det") -> list:
    subs = getattr(cmd, "commands", None)
    if not subs:
        return [(path, cmd)]
    return [leaf for name, sub in sorted(subs.items()) for leaf in _leaves(sub, f"{path} {name}")]


LEAVES = _leaves(typer.main.get_command(app))


def _kind(param) -> str:
    return getattr(param, "param_type_name", "")


def _options(cmd) -> list:
    """Visible options (Typer's own click copy: classes compared by kind, not isinstance)."""
    return [p for p in cmd.params if _kind(p) == "option" and not p.hidden]


def _documented_shorts() -> dict[str, str]:
    """The shared-options table of docs/cli.md: long -> short (or '')."""
    table = {}
    for line in (REPO / "docs" / "cli.md").read_text().splitlines():
        m = re.match(r"\| `(--[a-z-]+)[^`]*` \| (`(-[a-zA-Z])`)? *\|", line)
        if m:
            table[m.group(1)] = m.group(3) or ""
    return table


def test_the_walk_sees_every_command():
    names = {path for path, _ in LEAVES}
    assert {"det train", "det test", "det infer", "det config show", "det convert coco2yolo"} <= names
    assert len(names) >= 20


def test_one_long_option_per_short_option():
    meaning: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, cmd in LEAVES:
        for opt in _options(cmd):
            longs = [o for o in opt.opts + opt.secondary_opts if o.startswith("--")]
            for short in (o for o in opt.opts if re.fullmatch(r"-[a-zA-Z]", o)):
                meaning[short].update(longs[:1])
                where[(short, longs[0] if longs else "")].append(path)
    clashes = {s: sorted(longs) for s, longs in meaning.items() if len(longs) > 1}
    assert not clashes, {s: {lg: where[(s, lg)][:3] for lg in longs} for s, longs in clashes.items()}


def test_shared_options_use_the_documented_short_form():
    documented = _documented_shorts()
    assert {"--set", "--force", "--json", "--work-dir", "--out-dir", "--device", "--img-size"} <= set(documented)
    wrong = []
    for path, cmd in LEAVES:
        for opt in _options(cmd):
            longs = [o for o in opt.opts if o.startswith("--")]
            if not longs or longs[0] not in documented:
                continue
            shorts = [o for o in opt.opts if re.fullmatch(r"-[a-zA-Z]", o)]
            if any(s != documented[longs[0]] for s in shorts):
                wrong.append(f"{path} {longs[0]} {shorts}")
    assert not wrong, wrong


def test_one_image_size_option_in_h_w_order():
    for path, cmd in LEAVES:
        for opt in _options(cmd):
            names = set(opt.opts)
            assert not names & {"--shape", "--input-shape", "--image-size"}, f"{path}: {names}"
            # det export keeps --imgsz (the deployment issue's spelling, Ultralytics') beside --img-size
            assert "--imgsz" not in names or "--img-size" in names, f"{path}: --imgsz without --img-size"
            if "--img-size" in names:
                assert opt.nargs == 2 and "H W" in (opt.help or ""), f"{path} --img-size must take H W"


def test_device_defaults_to_auto_everywhere():
    for path, cmd in LEAVES:
        for opt in _options(cmd):
            if "--device" in opt.opts:
                assert opt.default == "auto", f"{path}: --device defaults to {opt.default!r}"


# Commands whose output is an HTTP API rather than data on stdout or in files.
SERVICES = {"det serve"}


def test_every_command_has_a_data_output():
    missing = []
    for path, cmd in LEAVES:
        opts = {o for p in _options(cmd) for o in p.opts}
        args = {p.name for p in cmd.params if _kind(p) == "argument"}
        if not (opts & OUTPUT_OPTIONS or args & OUTPUT_ARGUMENTS) and path not in SERVICES:
            missing.append(path)
    assert not missing, f"commands without --json or a file output: {missing}"


def test_every_command_has_help_with_an_example():
    for path, cmd in LEAVES:
        assert "Example:" in (cmd.help or ""), f"{path}: --help has no example"


@pytest.mark.parametrize("command,old", [(c, o) for c, table in ALIASES.items() for o in table])
def test_old_spellings_are_hidden_and_rewritten(command, old):
    from det.cli.main import rewrite_aliases

    new = ALIASES[command][old]
    for path, cmd in LEAVES:
        if path.split()[1] == command:
            assert old not in {o for p in _options(cmd) for o in p.opts}, f"{path} still shows {old}"
    assert rewrite_aliases([command, "x", old, "1"])[2] == new
    assert rewrite_aliases(["other", old, "1"])[1] == old


def test_old_spelling_warns_once(det_inproc, tmp_path):
    from det.cli import common

    common._WARNED.clear()
    r = det_inproc("flops", "demo/rtmdet_tiny", "--shape", "64", "64", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("--shape is now --img-size") == 1
    r = det_inproc("flops", "demo/rtmdet_tiny", "--shape", "64", "64", "--json")
    assert "--shape" not in r.stderr  # once per process


def test_optimize_anchors_old_input_shape_was_w_h(det_inproc, tmp_path):
    import json

    gt = {"images": [{"id": 1, "width": 200, "height": 100, "file_name": "a.png"}],
          "annotations": [{"id": k + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10 + 5 * k, 20], "area": 1,
                           "iscrowd": 0} for k in range(12)],
          "categories": [{"id": 1, "name": "a"}]}
    ann = tmp_path / "gt.json"
    ann.write_text(json.dumps(gt))
    new = det_inproc("optimize-anchors", "--ann", ann, "--img-size", "100", "300", "--num-anchors", "3",
                     "--out-dir", tmp_path / "a", "--json")
    old = det_inproc("optimize-anchors", "--ann", ann, "--input-shape", "300", "100", "--num-anchors", "3",
                     "--out-dir", tmp_path / "b", "--json")
    assert new.returncode == 0 and old.returncode == 0, new.stderr + old.stderr
    assert json.loads(new.stdout)["anchors"] == json.loads(old.stdout)["anchors"]
    assert json.loads(new.stdout)["input_shape"] == [300, 100]  # stored W H, given H W
