"""CocoPanopticMetric (the evaluator a model's predictions go through), the prediction writer
and `det eval --metric panoptic` (scores, --json, --format-only, hostile input)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from det.core.data.datasets import CocoPanopticDataset
from det.core.data.panoptic_io import read_segment_ids, write_panoptic_predictions
from det.core.errors import DetError
from det.core.evaluation.evaluator import build_evaluator
from det.core.evaluation.panoptic import evaluate_panoptic_files
from det.core.structures import DetSample
from det.core.structures.panoptic import PanopticPrediction
from tests.core.data.panoptic_fixtures import CAT, DOG, GRASS, make_dataset


def _dataset(root):
    return CocoPanopticDataset(str(make_dataset(root)), data_prefix={"img": str(root / "val")}, test_mode=True)


def _from_gt(ds, idx, drop_crowd=True, edit=None):
    rec = ds.data_list[idx]
    ids = read_segment_ids(rec["seg_map_path"])
    segs = [s for s in rec["segments_info"] if not (drop_crowd and s["iscrowd"])]
    ids = np.where(np.isin(ids, [s["id"] for s in segs]), ids, 0)
    if edit is not None:
        ids, segs = edit(ids, segs)
    return PanopticPrediction(ids, [{"id": s["id"], "label": s["category"], "isthing": s["is_thing"]} for s in segs])


def _run(metric, ds, preds):
    metric.reset()
    metric.process([DetSample(img_id=d["img_id"]) for d in ds.data_list], preds)
    return metric.evaluate()


def test_perfect_predictions_score_one_and_classwise_keys(tmp_path):
    ds = _dataset(tmp_path)
    metric = build_evaluator({"type": "CocoPanopticMetric", "classwise": True}, ds)
    res = _run(metric, ds, [_from_gt(ds, i) for i in range(len(ds))])
    assert res["coco_panoptic/PQ"] == 1 and res["coco_panoptic/PQ_th"] == 1 and res["coco_panoptic/PQ_st"] == 1
    assert res["coco_panoptic/cat_PQ"] == 1 and res["coco_panoptic/num_things"] == 2


def _cut_dog_and_mislabel_grass(ids, segs):
    ids = ids.copy()
    ids[ids == DOG] = np.where(np.arange(ids.shape[1]) % 2 == 0, DOG, GRASS)[None].repeat(ids.shape[0], 0)[ids == DOG]
    segs = [dict(s, category=0) if s["id"] == GRASS else s for s in segs]
    return ids, segs


def test_metric_equals_the_file_evaluation_of_its_own_written_predictions(tmp_path):
    ds = _dataset(tmp_path / "data")
    prefix = tmp_path / "out" / "val"
    metric = build_evaluator({"type": "CocoPanopticMetric", "classwise": True, "outfile_prefix": str(prefix)}, ds)
    preds = [_from_gt(ds, 0, edit=_cut_dog_and_mislabel_grass), _from_gt(ds, 1)]
    res = _run(metric, ds, preds)
    assert res["coco_panoptic/PQ"] < 1
    files = evaluate_panoptic_files(ds.ann_file, f"{prefix}.panoptic.json", progress=False)
    for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st", "RQ_st"):
        assert res[f"coco_panoptic/{key}"] == pytest.approx(files[key])
    written = json.loads((tmp_path / "out" / "val.panoptic.json").read_text())
    assert [a["file_name"] for a in written["annotations"]] == ["000.png", "001.png"]
    with pytest.raises(DetError, match="already exists"):
        _run(metric, ds, preds)


def test_format_only_writes_without_scoring(tmp_path):
    ds = _dataset(tmp_path / "data")
    metric = build_evaluator({"type": "CocoPanopticMetric", "format_only": True, "outfile_prefix": str(tmp_path / "t")}, ds)
    assert _run(metric, ds, [_from_gt(ds, i) for i in range(2)]) == {}
    assert (tmp_path / "t.panoptic" / "001.png").is_file()


def test_writer_refuses_to_overwrite_and_round_trips(tmp_path):
    ds = _dataset(tmp_path / "data")
    pred = _from_gt(ds, 0)
    out = tmp_path / "pred" / "p.json"
    info = write_panoptic_predictions(out, [({"id": 1, "file_name": "000.jpg"}, pred)], ds.categories, ds.cat_ids)
    assert info["images"] == 1 and (tmp_path / "pred" / "p" / "000.png").is_file()
    assert np.array_equal(read_segment_ids(tmp_path / "pred" / "p" / "000.png"), pred.seg_map)
    doc = json.loads(out.read_text())
    seg = {s["id"]: s for s in doc["annotations"][0]["segments_info"]}
    assert seg[CAT]["category_id"] == 1 and seg[CAT]["area"] == 6 and seg[CAT]["bbox"] == [1.0, 1.0, 3.0, 2.0]
    with pytest.raises(DetError, match="p.json: already exists"):
        write_panoptic_predictions(out, [({"id": 1, "file_name": "000.jpg"}, pred)], ds.categories, ds.cat_ids)
    assert not list((tmp_path / "pred").glob(".*.tmp"))


def test_prediction_to_coco_drops_empty_segments_and_stray_ids():
    seg_map = np.array([[1, 1, 2], [9, 0, 2]])
    pred = PanopticPrediction(seg_map, [{"id": 1, "label": 0}, {"id": 2, "label": 1, "score": 0.5}, {"id": 3, "label": 1}])
    rgb, info = pred.to_coco([4, 7])
    assert [s["id"] for s in info] == [1, 2] and info[1] == {"id": 2, "category_id": 7, "area": 2,
                                                             "bbox": [2.0, 0.0, 1.0, 2.0], "iscrowd": 0, "score": 0.5}
    assert rgb[1, 0].tolist() == [0, 0, 0]  # id 9 has no segment: VOID


# -- the command ---------------------------------------------------------------------------------

def _write_preds(tmp_path, ds, edit=None):
    out = tmp_path / "pred.json"
    items = [({"id": d["img_id"], "file_name": d["file_name"]}, _from_gt(ds, i, edit=edit if i == 0 else None))
             for i, d in enumerate(ds.data_list)]
    write_panoptic_predictions(out, items, ds.categories, ds.cat_ids)
    return out


def test_det_eval_panoptic_json_and_table(tmp_path, det_inproc):
    ds = _dataset(tmp_path / "data")
    pred = _write_preds(tmp_path, ds, edit=_cut_dog_and_mislabel_grass)
    res = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic", "--classwise", "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    ref = evaluate_panoptic_files(ds.ann_file, pred, progress=False)
    assert got["PQ"] == pytest.approx(ref["PQ"]) and got["classwise"]["dog"]["FN"] == 1 and got["num_images"] == 2
    table = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic", "--classwise")
    assert table.returncode == 0 and "PQ_th" in table.stdout and "grass" in table.stdout


def test_det_eval_panoptic_format_only(tmp_path, det_inproc):
    ds = _dataset(tmp_path / "data")
    pred = _write_preds(tmp_path, ds)
    sub = tmp_path / "sub" / "panoptic_test_results.json"
    res = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic", "--format-only", "--out", sub, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["images"] == 2 and (tmp_path / "sub" / "panoptic_test_results" / "000.png").is_file()
    again = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic", "--format-only", "--out", sub)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert evaluate_panoptic_files(ds.ann_file, sub, progress=False)["PQ"] == 1


def test_det_eval_panoptic_hostile_input(tmp_path, det_inproc):
    ds = _dataset(tmp_path / "data")
    pred = _write_preds(tmp_path, ds)
    (tmp_path / "pred" / "001.png").unlink()
    res = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic")
    assert res.returncode == 2 and "pred/001.png: cannot read predicted panoptic PNG" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    doc = json.loads(pred.read_text())
    doc["annotations"][0]["segments_info"][0]["category_id"] = 77
    doc["annotations"] = doc["annotations"][:1]
    pred.write_text(json.dumps(doc))
    res = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic")
    assert res.returncode == 2 and "segments_info[0]: unknown category_id 77" in res.stderr
    doc["annotations"][0]["segments_info"][0]["category_id"] = 1
    pred.write_text(json.dumps(doc))
    res = det_inproc("eval", pred, "--ann", ds.ann_file, "--metric", "panoptic")
    assert res.returncode == 2 and "no prediction for image_id 2" in res.stderr


def test_prediction_semantic_round_trip_and_id_encoding():
    from det.core.structures.panoptic import id2rgb, rgb2id

    sem = np.array([[0, 0, 3], [255, 2, 3]])
    pred = PanopticPrediction.from_semantic(sem, num_things=2)
    assert np.array_equal(pred.semantic(), sem)
    assert {s["label"]: s["isthing"] for s in pred.segments} == {0: True, 2: False, 3: False}
    ids = np.array([[0, 70000, 16777215]])
    assert id2rgb(ids).tolist() == [[[0, 0, 0], [112, 17, 1], [255, 255, 255]]]
    assert np.array_equal(rgb2id(id2rgb(ids)), ids)
    with pytest.raises(ValueError):
        id2rgb(np.array([[256**3]]))


def test_ground_truth_from_ann_file_and_seg_prefix_gives_the_same_numbers(tmp_path):
    ds = _dataset(tmp_path / "data")
    preds = [_from_gt(ds, 0, edit=_cut_dog_and_mislabel_grass), _from_gt(ds, 1)]
    own = _run(build_evaluator({"type": "CocoPanopticMetric"}, ds), ds, preds)
    files = _run(build_evaluator({"type": "CocoPanopticMetric", "ann_file": ds.ann_file,
                                  "seg_prefix": str(tmp_path / "data" / "panoptic_val")}, ds), ds, preds)
    assert own == files and own["coco_panoptic/PQ"] < 1
