"""YAML that would exhaust memory or the stack is refused (issue 16, kind 'resource limits')."""
from __future__ import annotations

import time

import pytest

from tests.hostile.conftest import assert_user_error

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("command", [("config", "show"), ("config", "validate")])
def test_alias_bomb_is_refused_fast(det_inproc, tmp_path, command):
    preset = tmp_path / "bomb.yaml"
    preset.write_text(BOMB)
    start = time.perf_counter()
    r = det_inproc(*command, preset)
    assert time.perf_counter() - start < 20
    assert_user_error(r, "bomb.yaml", "alias")


def test_deep_nesting_is_refused(det_inproc, tmp_path):
    preset = tmp_path / "deep.yaml"
    preset.write_text("model: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_user_error(det_inproc("config", "show", preset), "deep.yaml:1", "nested deeper")


def test_deep_nesting_in_a_set_value_is_refused(det_inproc):
    r = det_inproc("config", "show", "demo/rtmdet_tiny", "--set", "meta.x=" + "[" * 5000 + "]" * 5000)
    assert_user_error(r, "--set meta.x=", "nested deeper")


def test_duplicate_keys_are_an_error(det_inproc, tmp_path):
    preset = tmp_path / "dup.yaml"
    preset.write_text("train:\n  max_epochs: 1\n  max_epochs: 2\n")
    assert_user_error(det_inproc("config", "show", preset, "--no-check"), "dup.yaml:3", "duplicate key 'max_epochs'",
                      "line 2")


def test_binary_and_folder_presets(det_inproc, tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_user_error(det_inproc("config", "show", binary), "bin.yaml", "not a text file")
    assert_user_error(det_inproc("config", "show", tmp_path), str(tmp_path))
