import numpy as np
import pytest
import torch

from det.core.data import build_dataloader, collate
from det.core.data.samplers import AspectRatioBatchSampler, DetSampler, InfiniteSampler
from det.core.errors import ConfigError
from det.core.structures import DetSample


def test_collate_pads_to_divisor():
    items = [{"inputs": torch.full((3, 20, 30), 7, dtype=torch.uint8), "sample": DetSample()},
             {"inputs": torch.full((3, 33, 10), 9, dtype=torch.uint8), "sample": DetSample()}]
    batch = collate(items, size_divisor=16, pad_val=1)
    assert batch["inputs"].shape == (2, 3, 48, 32) and batch["inputs"].dtype == torch.uint8
    assert (batch["inputs"][0, :, :20, :30] == 7).all() and (batch["inputs"][0, :, 20:] == 1).all()
    assert (batch["inputs"][1, :, :33, :10] == 9).all() and (batch["inputs"][1, :, :, 10:] == 1).all()
    assert all(s.batch_input_shape == (48, 32) for s in batch["samples"])


def test_samplers_shuffle_shard_and_repeat():
    s = DetSampler(10, shuffle=True, seed=3)
    e0, e1 = list(s), list(s)  # the epoch advances by itself
    assert sorted(e0) == list(range(10)) and e0 != e1
    s.set_epoch(0)
    assert list(s) == e0
    ranks = [list(DetSampler(10, shuffle=True, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert all(len(r) == 4 for r in ranks)  # 10 padded to 12
    assert set(sum(ranks, [])) == set(range(10))
    val = [list(DetSampler(10, shuffle=False, rank=r, world_size=3, round_up=False)) for r in range(3)]
    assert sorted(sum(val, [])) == list(range(10))
    it = iter(InfiniteSampler(4, shuffle=True, seed=0))
    first = [next(it) for _ in range(12)]
    assert all(sorted(first[i:i + 4]) == [0, 1, 2, 3] for i in (0, 4, 8))


def test_aspect_ratio_batches_are_homogeneous():
    flags = [True, False, True, True, False, False, True]
    batches = list(AspectRatioBatchSampler(DetSampler(7, shuffle=True, seed=1), flags, 2))
    full = [b for b in batches if len(b) == 2]
    assert sorted(sum(batches, [])) == list(range(7))
    assert all(flags[b[0]] == flags[b[1]] for b in full[:-1] if len(full) > 1)


def _loader_cfg(coco_dir, workers):
    return {"dataset": {"type": "CocoDataset", "ann_file": str(coco_dir / "ann.json"), "data_prefix": str(coco_dir / "imgs"),
                        "filter_empty_gt": False},
            "pipeline": [{"type": "LoadImage"}, {"type": "LoadAnnotations"},
                         {"type": "RandomResize", "scale": [64, 64], "ratio_range": [0.5, 1.5]},
                         {"type": "RandomFlip", "prob": 0.5}, {"type": "YOLOXHSVRandomAug"}, {"type": "Pack"}],
            "batch_size": 2, "num_workers": workers, "aspect_ratio_grouping": False}


def _epochs(loader, n):
    out = []
    for _ in range(n):
        for b in loader:
            out.append((b["inputs"].clone(), [s.img_id for s in b["samples"]], [s.gt.bboxes.clone() for s in b["samples"]]))
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_batches(coco_dir, workers):
    a = _epochs(build_dataloader(_loader_cfg(coco_dir, workers), shuffle=True, seed=5), 3)
    b = _epochs(build_dataloader(_loader_cfg(coco_dir, workers), shuffle=True, seed=5), 3)
    assert len(a) == 3
    for (ia, ida, ba), (ib, idb, bb) in zip(a, b):
        assert ida == idb and ia.shape == ib.shape and torch.equal(ia, ib)
        assert all(torch.equal(x, y) for x, y in zip(ba, bb))
    c = _epochs(build_dataloader(_loader_cfg(coco_dir, workers), shuffle=True, seed=6), 3)
    assert any(x[0].shape != y[0].shape or not torch.equal(x[0], y[0]) for x, y in zip(a, c))
    assert all(x[0].shape[-1] % 32 == 0 and x[0].shape[-2] % 32 == 0 for x in a)


def test_loader_config_errors(coco_dir):
    cfg = _loader_cfg(coco_dir, 0)
    cfg["batch_sise"] = 3
    with pytest.raises(ConfigError, match="batch_sise: unknown loader key; did you mean 'batch_size'"):
        build_dataloader(cfg, shuffle=False, seed=0)


def test_infinite_grouped_loader(coco_dir):
    cfg = dict(_loader_cfg(coco_dir, 0), aspect_ratio_grouping=True)
    loader = build_dataloader(cfg, shuffle=True, seed=0, infinite=True)
    it = iter(loader)
    shapes = [next(it)["inputs"].shape[0] for _ in range(5)]  # more batches than one epoch holds
    assert len(shapes) == 5
    assert np.all(np.array(shapes) >= 1)


class _Draws(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        from det.core.data.transforms.rng import rng

        return float(rng().random())


def test_any_torch_loader_gives_workers_distinct_reproducible_streams():
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        loader = torch.utils.data.DataLoader(_Draws(), batch_size=2, num_workers=2, generator=g)
        return [x.item() for b in loader for x in b]

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert len(set(a)) == 8  # workers do not repeat each other's draws
