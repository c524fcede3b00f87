"""The mot-search engine: grid expansion, detection sources and caching, parallel = serial."""
import numpy as np
import pytest

from det.core.config import load_preset
from det.core.errors import ConfigError, DataError
from det.core.data.mot_io import read_mot_txt
from det.core.tracking.search import (best_set_line, check_tracker_config, evaluate_tracker, expand_grid,
                                      prepare_sequences, search)
from det.core.tracking.synth import generate_mot


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mot")
    generate_mot(root, seqs=2, frames=60, seed=1, width=160, height=120, progress=False)
    return root


def test_expand_grid_nested_and_errors():
    cfg = {"type": "ByteTrack", "match_iou_thr": [0.1, 0.3], "obj_score_thr": 0.6,
           "motion": {"type": "KalmanFilter", "std_weight_position": [0.05, 0.1]}}
    names, combos = expand_grid(cfg)
    assert names == ["tracker.match_iou_thr", "tracker.motion.std_weight_position"]
    assert len(combos) == 4
    params, concrete = combos[3]
    assert params == {"tracker.match_iou_thr": 0.3, "tracker.motion.std_weight_position": 0.1}
    assert concrete["match_iou_thr"] == 0.3 and concrete["motion"]["std_weight_position"] == 0.1
    assert cfg["match_iou_thr"] == [0.1, 0.3]  # the input is not modified
    assert best_set_line(names, params) == "--set tracker.match_iou_thr=0.3 --set tracker.motion.std_weight_position=0.1"
    with pytest.raises(ConfigError, match="empty list"):
        expand_grid({"type": "SORT", "match_iou_thr": []})
    with pytest.raises(ConfigError, match=r"tracker\.match_iou: unknown key.*combination"):
        check_tracker_config({"type": "SORT", "match_iou": [0.1, 0.2]})


def test_search_serial_equals_parallel_and_is_sorted(root):
    seqs = prepare_sequences(root, public=True)
    cfg = load_preset("trackers/bytetrack", ["tracker.match_iou_thr=[0.1,0.5]", "tracker.obj_score_thr=[0.5,0.7]"])["tracker"]
    names, serial = search(cfg, seqs, metric="IDF1", jobs=1)
    _, parallel = search(cfg, seqs, metric="IDF1", jobs=2)
    assert names == ["tracker.obj_score_thr", "tracker.match_iou_thr"]
    assert serial == parallel
    assert [r["IDF1"] for r in serial] == sorted((r["IDF1"] for r in serial), reverse=True)
    assert {"HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN", "DetA", "AssA", "LocA"} <= set(serial[0])
    # a row equals evaluating that combination on its own
    best = dict(cfg, obj_score_thr=serial[0]["tracker.obj_score_thr"], match_iou_thr=serial[0]["tracker.match_iou_thr"])
    assert evaluate_tracker(best, seqs)["IDF1"] == serial[0]["IDF1"]
    _, by_fp = search(cfg, seqs, metric="FP", jobs=1)
    assert [r["FP"] for r in by_fp] == sorted(r["FP"] for r in by_fp)  # lower is better
    with pytest.raises(ConfigError, match="did you mean 'HOTA'"):
        search(cfg, seqs, metric="HOTTA")


def test_detector_runs_once_per_frame_and_is_cached(root, tmp_path):
    calls = []

    def detect(images):
        calls.append(len(images))
        return [np.array([[10.0, 10.0, 40.0, 70.0, 0.9]]) for _ in images]

    cache = tmp_path / "cache"
    seqs = prepare_sequences(root, cache=cache, detect=detect)
    assert sum(calls) == 120  # 2 sequences x 60 frames, once
    assert sorted(p.name for p in cache.iterdir()) == ["SYNTH-01.txt", "SYNTH-02.txt"]
    assert len(read_mot_txt(cache / "SYNTH-01.txt", "det")) == 60
    again = prepare_sequences(root, cache=cache, detect=detect)
    assert sum(calls) == 120  # served from the cache
    np.testing.assert_allclose(again[0].detections[:, :7], seqs[0].detections[:, :7], atol=1e-4)
    with pytest.raises(DataError, match="no cached detections"):
        prepare_sequences(root, cache=tmp_path / "empty")
    with pytest.raises(DataError, match="no detections"):
        prepare_sequences(root)


def test_config_validate_builds_every_combination():
    from det.core.config.validate import validate_preset

    assert validate_preset(load_preset("trackers/ocsort", ["tracker.vel_delta_t=[2,3]"])) == ["tracker"]
    with pytest.raises(ConfigError, match=r"tracker\.num_frames_retain: must be >= 0"):
        validate_preset(load_preset("trackers/sort", ["tracker.num_frames_retain=[3,-1]"]))
