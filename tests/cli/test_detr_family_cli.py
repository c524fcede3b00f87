"""DETR, Deformable DETR (+refine, +two-stage) and DINO presets through the CLI: one-iteration
`det train` on tiny synthetic shapes (the COCO presets with their data swapped for the bundled
shapes and the model shrunk), then `det test` and `det infer` on the checkpoint, and `det flops`
on each preset as shipped (the deformable attention counted)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_DEMO_OVERRIDES

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
from detr_family import reduced  # noqa: E402

PRESETS = {
    "detr": "presets/detr/detr_r50_8xb2-150e_coco.yaml",
    "deformable-detr": "presets/deformable_detr/deformable-detr_r50_16xb2-50e_coco.yaml",
    "deformable-detr-refine": "presets/deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.yaml",
    "deformable-detr-refine-twostage": "presets/deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.yaml",
    "dino-4scale": "presets/dino/dino-4scale_r50_8xb2-12e_coco.yaml",
}


def tiny_preset(name: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """A user preset on top of the shipped one, with the synthetic shapes as data; plus --set items."""
    shapes = yaml.safe_load((REPO / "presets/_base_/data/shapes.yaml").read_text())
    preset = {"_base_": str(REPO / PRESETS[name]), "data": {"_delete_": True, **shapes["data"]},
              "evaluation": {"type": "CocoMetric", "metric": "bbox"}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(preset))
    model = {**reduced(name), "model.bbox_head.num_classes": 6}
    sets = [f"{k}={json.dumps(v)}" for k, v in model.items()]
    sets += [*TINY_DEMO_OVERRIDES, "data.train.pipeline.2.scale=[64,64]", "data.val.pipeline.2.scale=[64,64]",
             "data.test.pipeline.2.scale=[64,64]", "train.checkpoint.save_best=null"]
    return path, [x for s in sets for x in ("--set", s)]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_train_test_infer(name, tmp_path, det_inproc):
    preset, sets = tiny_preset(name, tmp_path)
    r = det_inproc("train", preset, "--work-dir", tmp_path / "w", "--device", "cpu", *sets)
    assert r.returncode == 0, r.stderr
    ckpt = tmp_path / "w" / "last.pt"
    log = [json.loads(line) for line in (tmp_path / "w" / "log.jsonl").read_text().splitlines()]
    losses = [rec for rec in log if "loss" in rec]
    assert losses and all(rec["loss"] == rec["loss"] for rec in losses)  # finite, not NaN
    r = det_inproc("test", ckpt, "--work-dir", tmp_path / "t", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    assert "coco/bbox_mAP" in json.loads((tmp_path / "t" / "metrics.json").read_text())["metrics"]
    from det.core.config import load_preset
    from det.core.engine.runner import build_split

    dataset, _, _ = build_split(load_preset(preset, [s for s in sets if s != "--set"]), "val")
    r = det_inproc("infer", str(dataset.data_list[0]["img_path"]), "--weights", ckpt, "--out-dir", tmp_path / "inf",
                   "--score-thr", "0.0", "--device", "cpu", "--no-vis")
    assert r.returncode == 0, r.stderr
    data = json.loads(next((tmp_path / "inf" / "preds").glob("*.json")).read_text())
    assert len(data["bboxes"]) == len(data["scores"]) == len(data["labels"]) > 0


@pytest.mark.parametrize("name", ["detr", "dino-4scale"])
def test_flops_counts_the_transformer(name, det_inproc):
    r = det_inproc("flops", PRESETS[name], "--img-size", "256", "320", "--depth", "1", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    rows = {row["module"]: row for row in res["modules"]}
    assert rows["encoder"]["flops"] > 0 and rows["decoder"]["flops"] > 0
    assert "ms_deform_attn" not in res["uncounted_ops"]


def test_dino_demo_preset_validates(det_inproc):
    r = det_inproc("config", "validate", "presets/demo/dino_r18.yaml")
    assert r.returncode == 0, r.stderr
