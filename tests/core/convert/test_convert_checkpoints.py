"""publish: weights only, CPU tensors, sha256-stamped name; foreign checkpoint loading."""
import hashlib

import pytest
import torch

from det.core.convert.checkpoints import hashed_name, load_foreign_checkpoint, publish, state_dict_of
from det.core.errors import DetError
from det.core.fileio import load_checkpoint


def training_checkpoint(path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    ckpt = {"meta": {"epoch": 3, "classes": ["a", "b"]}, "preset": {"model": {"type": "X"}},
            "state_dict": model.state_dict(), "optimizer": opt.state_dict(), "raw_state_dict": model.state_dict(),
            "rng": {"torch": torch.get_rng_state()}, "loop": {"epoch": 3, "iter": 12}}
    torch.save(ckpt, path)
    return ckpt


def test_publish_keeps_weights_and_stamps_hash(tmp_path):
    src = tmp_path / "last.pt"
    ckpt = training_checkpoint(src)
    info = publish(src, tmp_path / "release/model.pt")
    out = tmp_path / "release" / f"model-{info['sha256'][:8]}.pt"
    assert info["file"] == str(out) and out.is_file()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == info["sha256"]
    assert info["dropped"] == ["loop", "optimizer", "raw_state_dict", "rng"]
    loaded = load_checkpoint(out)  # weights_only=True
    assert sorted(loaded) == ["meta", "preset", "state_dict"]
    assert loaded["meta"] == ckpt["meta"] and loaded["preset"] == ckpt["preset"]
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(loaded["state_dict"][key], value) and loaded["state_dict"][key].device.type == "cpu"
    with pytest.raises(DetError, match="already exists"):
        publish(src, tmp_path / "release/model.pt")
    assert publish(src, tmp_path / "release/model.pt", force=True)["sha256"] == info["sha256"]  # deterministic


def test_hashed_name_and_bad_inputs(tmp_path):
    assert hashed_name("a/b.pth", "1a2b3c4d5e") == hashed_name("a/b.pth", "1a2b3c4d").with_name("b-1a2b3c4d.pth")
    assert hashed_name("rel", "abcdef0123").name == "rel-abcdef01.pt"
    torch.save({"x": 1}, tmp_path / "odd.pt")
    with pytest.raises(DetError, match="odd.pt: no 'state_dict' entry"):
        publish(tmp_path / "odd.pt", tmp_path / "o.pt")
    with pytest.raises(DetError, match="nope.pt: checkpoint not found"):
        publish(tmp_path / "nope.pt", tmp_path / "o.pt")


class ForeignThing:
    """Stands for an object of another toolkit (e.g. mmengine's HistoryBuffer) inside `meta`."""

    def __init__(self):
        self.values = [1, 2, 3]

    def __reduce__(self):
        return (eval, ("1 / 0",))  # would raise if the loader trusted foreign globals


def test_foreign_checkpoint_loads_without_running_code(tmp_path):
    weights = {"backbone.conv.weight": torch.randn(2, 3, 1, 1)}
    torch.save({"meta": {"hub": ForeignThing(), "epoch": 2}, "state_dict": weights}, tmp_path / "mm.pth")
    with pytest.raises(DetError):
        load_checkpoint(tmp_path / "mm.pth")  # weights_only refuses it
    ckpt = load_foreign_checkpoint(tmp_path / "mm.pth")
    assert ckpt["meta"]["epoch"] == 2
    from det.core.convert.checkpoints import _Opaque

    assert isinstance(ckpt["meta"]["hub"], _Opaque)  # a stand-in: eval never ran
    assert torch.equal(state_dict_of(ckpt, "mm.pth")["backbone.conv.weight"], weights["backbone.conv.weight"])
    torch.save(weights, tmp_path / "bare.pth")
    assert list(state_dict_of(load_foreign_checkpoint(tmp_path / "bare.pth"), "bare.pth")) == list(weights)
