"""HOTA / CLEAR / Identity equal TrackEval's values (computed once by TrackEval on the fixture
files, see benchmarks/parity/mot_trackeval.py), plus hand-checked cases and input errors."""
import json
from pathlib import Path

import numpy as np
import pytest

from det.core.errors import DataError
from det.core.evaluation import mot
from det.core.data.mot_io import read_mot_txt, read_seqinfo

FIXTURE = Path(__file__).parent / "fixtures" / "mot"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
TRACKERS = sorted(EXPECTED)


def _seq_data(tracker: str, seq: str) -> mot.SequenceData:
    sdir = FIXTURE / "gt" / seq
    return mot.preprocess_sequence(read_mot_txt(sdir / "gt" / "gt.txt", "gt"),
                                   read_mot_txt(FIXTURE / "trackers" / tracker / f"{seq}.txt", "result"),
                                   read_seqinfo(sdir)["seqLength"])


def _compare(ours: dict, ref: dict, where: str) -> None:
    for field, value in ref.items():
        np.testing.assert_allclose(np.asarray(ours[field], float), np.asarray(value, float), rtol=0, atol=1e-6,
                                   err_msg=f"{where}/{field}")


@pytest.mark.parametrize("tracker", TRACKERS)
def test_equals_trackeval_per_sequence_and_combined(tracker):
    parts = {"h": [], "c": [], "i": []}
    for seq in sorted(s for s in EXPECTED[tracker] if s != "COMBINED_SEQ"):
        d = _seq_data(tracker, seq)
        h, c, i = mot.hota_sequence(d), mot.clear_sequence(d), mot.identity_sequence(d)
        _compare({**h, **c, **i}, EXPECTED[tracker][seq], f"{tracker}/{seq}")
        parts["h"].append(h)
        parts["c"].append(c)
        parts["i"].append(i)
    combined = {**mot.hota_combine(parts["h"]), **mot.clear_combine(parts["c"]), **mot.identity_combine(parts["i"])}
    _compare(combined, EXPECTED[tracker]["COMBINED_SEQ"], f"{tracker}/COMBINED")


def test_evaluate_mot_summary_matches_trackeval():
    res = mot.evaluate_mot(FIXTURE / "gt", FIXTURE / "trackers" / "sort_noisy")
    ref = EXPECTED["sort_noisy"]["COMBINED_SEQ"]
    assert res["HOTA"] == pytest.approx(np.mean(ref["HOTA"]), abs=1e-6)
    assert res["AssA"] == pytest.approx(np.mean(ref["AssA"]), abs=1e-6)
    assert res["MOTA"] == pytest.approx(ref["MOTA"], abs=1e-6)
    assert res["IDF1"] == pytest.approx(ref["IDF1"], abs=1e-6)
    assert (res["IDSW"], res["FP"], res["FN"], res["Frag"], res["MT"], res["ML"]) == (
        ref["IDSW"], ref["CLR_FP"], ref["CLR_FN"], ref["Frag"], ref["MT"], ref["ML"])
    assert sorted(res["sequences"]) == ["EDGE-01", "SYNTH-01"]
    # the fixture exercises what matters: id switches, fragmentation, misses and false positives
    assert ref["IDSW"] > 0 and ref["Frag"] > 0 and ref["CLR_FP"] > 0 and ref["CLR_FN"] > 0


def test_hand_computed_small_case():
    # two gt objects over 4 frames; the tracker swaps ids at frame 3 and misses object 2 at frame 4
    gt, tr = [], []
    for f in range(1, 5):
        gt += [[f, 1, 0, 0, 10, 10, 1, 1, 1, -1], [f, 2, 50, 0, 10, 10, 1, 1, 1, -1]]
        a, b = (1, 2) if f < 3 else (2, 1)
        tr.append([f, a, 0, 0, 10, 10, 1, -1, -1, -1])
        if f < 4:
            tr.append([f, b, 50, 0, 10, 10, 1, -1, -1, -1])
    d = mot.preprocess_sequence(np.array(gt, float), np.array(tr, float), 4)
    c = mot.clear_sequence(d)
    assert (c["CLR_TP"], c["CLR_FN"], c["CLR_FP"], c["IDSW"]) == (7, 1, 0, 2)
    assert c["MOTA"] == pytest.approx((7 - 0 - 2) / 8)
    i = mot.identity_sequence(d)
    assert (i["IDTP"], i["IDFN"], i["IDFP"]) == (4, 4, 3)  # best id mapping keeps frames 1-2 of each
    assert i["IDF1"] == pytest.approx(4 / (4 + 0.5 * 3 + 0.5 * 4))


def test_input_errors_name_the_file(tmp_path):
    gt = np.array([[1, 1, 0, 0, 5, 5, 1, 1, 1, -1]], float)
    with pytest.raises(DataError, match="res.txt: id 3 appears twice in frame 1"):
        mot.preprocess_sequence(gt, np.array([[1, 3, 0, 0, 5, 5, 1, -1, -1, -1]] * 2, float), 1, tracker_name="res.txt")
    with pytest.raises(DataError, match="beyond the sequence length"):
        mot.preprocess_sequence(gt, np.array([[5, 3, 0, 0, 5, 5, 1, -1, -1, -1]], float), 1)
    with pytest.raises(DataError, match="invalid gt class"):
        mot.preprocess_sequence(np.array([[1, 1, 0, 0, 5, 5, 1, 42, 1, -1]], float),
                                np.array([[1, 3, 0, 0, 5, 5, 1, -1, -1, -1]], float), 1)
    with pytest.raises(DataError, match=r"EDGE-01\.txt: tracker results for sequence 'EDGE-01' not found"):
        mot.evaluate_mot(FIXTURE / "gt", tmp_path)
