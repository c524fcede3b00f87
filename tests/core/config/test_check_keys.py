"""det's one unknown-key check (`config.build.check_keys`) and the checks that use it."""
from __future__ import annotations

import pytest

from det.core.config.build import at_path, check_keys, check_signature_keys
from det.core.config.consumed import track, unread
from det.core.errors import ConfigError


def test_message_names_the_path_owner_and_a_suggestion():
    with at_path("model"), pytest.raises(ConfigError, match=r"^model\.backbone\.dpeth: unknown key for ResNet; "
                                                                r"did you mean 'depth'\?$"):
        check_keys({"dpeth": 50}, {"depth", "num_stages"}, "backbone", "ResNet")
    with at_path("model"), pytest.raises(ConfigError, match=r"^data\.train\.batchsize: unknown loader key"):
        check_keys({"batchsize": 2}, {"batch_size"}, what="loader key", where="data.train")
    with pytest.raises(ConfigError, match=r"^infer\.zzz: unknown key; valid: a, b$"):
        check_keys({"zzz": 1}, {"a", "b"}, where="infer")
    assert check_keys(None, {"a"}) == {}


def test_checking_does_not_count_as_reading_for_strict():
    cfg = track({"train": {"lr": 0.1, "unused": 1}})
    check_keys(cfg["train"], {"lr", "unused"}, where="train")
    cfg["train"]["lr"]
    assert unread(cfg) == ["train.unused"]


def test_signature_keys_and_every_section_use_the_one_check():
    def factory(a: int = 1, b: int = 2, params=None):
        return a + b

    check_signature_keys(factory, {"a": 3}, "F")
    with pytest.raises(ConfigError, match=r"^c: unknown key for F; valid: a, b$"):
        check_signature_keys(factory, {"c": 3}, "F", exclude={"params"})
    from det.core.engine.optim import param_groups
    from det.core.inference.settings import infer_settings

    with pytest.raises(ConfigError, match=r"^infer\.scoer_thr: unknown key; did you mean 'score_thr'\?"):
        infer_settings({"infer": {"scoer_thr": 0.5}})
    with pytest.raises(ConfigError, match=r"^train\.paramwise\.custom_keys\.head\.lr_mul: unknown key; did you mean"):
        param_groups(__import__("torch").nn.Linear(1, 1), 0.1, 0.0, {"custom_keys": {"head": {"lr_mul": 2}}})
