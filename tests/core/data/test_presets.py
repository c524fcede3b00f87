import pytest
import torch

from det.core.config import load_preset, preset_root
from det.core.config.validate import validate_preset
from det.core.data import build_dataloader, build_dataset
from det.core.errors import ConfigError

BASES = sorted((preset_root() / "_base_" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", BASES, ids=[p.stem for p in BASES])
def test_data_bases_validate(path):
    cfg = load_preset(path)
    assert sorted(validate_preset(cfg)) == sorted(k for k in ("data", "evaluation") if k in cfg)


def test_validate_names_bad_keys():
    path = preset_root() / "_base_" / "data" / "shapes_rtmdet.yaml"
    with pytest.raises(ConfigError, match=r"data.train.switch_pipeline.4.hue_delt: unknown key for YOLOXHSVRandomAug"):
        validate_preset(load_preset(path, ["data.train.switch_pipeline.4.hue_delt=3"]))
    with pytest.raises(ConfigError, match=r"data.val.dataset.type: unknown dataset type 'CocoDatset'; did you mean 'CocoDataset'"):
        validate_preset(load_preset(path, ["data.val.dataset.type=CocoDatset"]))
    with pytest.raises(ConfigError, match=r"data.tarin: unknown key; did you mean 'train'"):
        validate_preset(load_preset(path, ["data.tarin={}"]))


def test_shapes_rtmdet_loader_and_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_CACHE", str(tmp_path))
    small = [f"data.{s}.dataset.{k}={v}" for s in ("train", "val") for k, v in (("num_train", 8), ("num_val", 2), ("size", 64),
                                                                        ("min_object_size", 8), ("max_object_size", 32))]
    cfg = load_preset(preset_root() / "_base_" / "data" / "shapes_rtmdet.yaml", small + ["data.train.num_workers=0",
                      "data.train.batch_size=4", "data.train.pipeline.2.img_scale=[64,64]",
                      "data.train.pipeline.3.scale=[128,128]", "data.train.pipeline.4.crop_size=[64,64]",
                      "data.train.pipeline.7.size=[64,64]", "data.train.pipeline.8.img_scale=[64,64]"])
    loader = build_dataloader(cfg["data"]["train"], shuffle=True, seed=0)
    batches = [b for b in loader] + [b for b in loader]
    assert all(b["inputs"].shape[1:] == (3, 64, 64) and b["inputs"].dtype == torch.uint8 for b in batches)
    assert sum(len(s.gt) for b in batches for s in b["samples"]) > 0
    ds = loader.dataset
    ds.set_pipeline(cfg["data"]["train"]["switch_pipeline"])
    assert "Mosaic" not in repr(ds.pipeline) and ds[0]["inputs"].shape[0] == 3
    val = build_dataset(cfg["data"]["val"])
    assert val.test_mode and len(val) == 2 and val[0]["sample"].gt.bboxes.dtype == torch.float32


def test_shapes_panoptic_loader_batches_semantic_maps(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_CACHE", str(tmp_path))
    small = [f"data.{s}.dataset.{k}={v}" for s in ("train", "val") for k, v in (("num_train", 4), ("num_val", 2), ("size", 64))]
    cfg = load_preset(preset_root() / "_base_" / "data" / "shapes_panoptic.yaml",
                      small + ["data.train.num_workers=0", "data.train.batch_size=2"])
    loader = build_dataloader(cfg["data"]["train"], shuffle=True, seed=0)
    batch = next(iter(loader))
    for img, sample in zip(batch["inputs"], batch["samples"]):
        sem = sample.gt_sem_seg
        assert sem.dtype == torch.uint8 and tuple(sem.shape) == sample.img_shape
        for mask, label in zip(sample.gt.masks, sample.gt.labels):
            assert (sem[mask] == label).all()
    val = build_dataset(cfg["data"]["val"])
    assert val.test_mode and val.num_things == 6 and val[0]["sample"].gt_sem_seg is None
