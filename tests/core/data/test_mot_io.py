"""MOTChallenge files: parsing, malformed lines (file:line), writing, seqinfo, filters."""
import numpy as np
import pytest

from det.core.errors import DataError, DetError
from det.core.data.mot_io import (detections_by_frame, filter_gt, find_sequences, read_mot_txt, read_seqinfo,
                                      write_mot_txt, write_seqinfo)


def test_reads_gt_det_and_results_with_defaults(tmp_path):
    (tmp_path / "gt.txt").write_text("1,1,10,20,30,40,1,1,0.5\n\n2, 1, 11, 21, 30, 40, 0, 7, 1.0\n")
    gt = read_mot_txt(tmp_path / "gt.txt", "gt")
    assert gt.shape == (2, 10)
    np.testing.assert_allclose(gt[0, :9], [1, 1, 10, 20, 30, 40, 1, 1, 0.5])
    (tmp_path / "det.txt").write_text("1,-1,10,20,30,40,0.9\n")
    det = read_mot_txt(tmp_path / "det.txt", "det")
    np.testing.assert_allclose(det[0], [1, -1, 10, 20, 30, 40, 0.9, -1, -1, -1])
    (tmp_path / "short.txt").write_text("3 2 1 2 3 4\n")  # whitespace-separated, 6 columns
    gt = read_mot_txt(tmp_path / "short.txt", "gt")
    np.testing.assert_allclose(gt[0], [3, 2, 1, 2, 3, 4, 1, 1, 1, -1])


@pytest.mark.parametrize("line, message", [
    ("1,1,10,20,abc,40,1,1,1", "'abc' is not a number"),
    ("1,1,10,20", "expected at least 6"),
    ("0,1,10,20,30,40,1,1,1", "frame must be an integer >= 1"),
    ("1.5,1,10,20,30,40,1,1,1", "frame must be an integer >= 1"),
    ("1,1,10,20,-3,40,1,1,1", "negative width/height"),
    ("1,-1,10,20,30,40,1,1,1", "id must be >= 0"),
    ("1,1,10,20,30,40,1,1,1,1,1", "at most 10"),
    ("1,1,nan,20,30,40,1,1,1", "non-finite"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,20,30,40,1,1,1\n" + line + "\n")
    with pytest.raises(DataError, match=rf"gt\.txt:2: .*{message}"):
        read_mot_txt(path, "gt")


def test_det_ids_may_be_negative_and_missing_file_is_named(tmp_path):
    (tmp_path / "det.txt").write_text("1,-1,1,2,3,4,0.5\n")
    assert read_mot_txt(tmp_path / "det.txt", "det").shape == (1, 10)
    with pytest.raises(DataError, match="nope.txt: file not found"):
        read_mot_txt(tmp_path / "nope.txt", "det")


def test_write_round_trip_and_no_silent_overwrite(tmp_path):
    rows = np.array([[2, 5, 1.5, 2.25, 30, 40, 0.8], [1, 3, 0, 0, 10, 10, 0.9]])
    path = write_mot_txt(tmp_path / "res.txt", rows)
    back = read_mot_txt(path, "result")
    np.testing.assert_allclose(back[:, :7], rows[[1, 0]], atol=1e-4)  # sorted by frame
    assert path.read_text().splitlines()[0] == "1,3,0.00,0.00,10.00,10.00,0.9000,-1,-1,-1"
    with pytest.raises(DetError, match="already exists"):
        write_mot_txt(path, rows)
    write_mot_txt(path, rows[:1], force=True)
    assert len(read_mot_txt(path)) == 1


def test_seqinfo_and_sequence_discovery(tmp_path):
    write_seqinfo(tmp_path / "A", "A", 25, 640, 480, fps=25)
    (tmp_path / "B" / "gt").mkdir(parents=True)
    (tmp_path / "B" / "gt" / "gt.txt").write_text("7,1,1,1,5,5,1,1,1\n")
    (tmp_path / "notaseq").mkdir()
    info = read_seqinfo(tmp_path / "A")
    assert info["seqLength"] == 25 and info["imWidth"] == 640 and info["frameRate"] == 25
    assert read_seqinfo(tmp_path / "B")["seqLength"] == 7  # no seqinfo: last gt frame
    assert [p.name for p in find_sequences(tmp_path)] == ["A", "B"]
    assert find_sequences(tmp_path / "A") == [tmp_path / "A"]
    (tmp_path / "A" / "seqinfo.ini").write_text("[Sequence]\nname=A\nseqLength=x\n")
    with pytest.raises(DataError, match="seqinfo.ini: seqLength must be an integer"):
        read_seqinfo(tmp_path / "A")
    with pytest.raises(DataError, match="no MOTChallenge sequences"):
        find_sequences(tmp_path / "notaseq")


def test_detections_by_frame_and_gt_filter():
    rows = np.array([[2, -1, 10, 20, 5, 5, 0.9, -1, -1, -1], [2, -1, 0, 0, 1, 1, 0.1, -1, -1, -1],
                     [1, -1, 1, 1, 2, 2, 0.5, -1, -1, -1]])
    by = detections_by_frame(rows, num_frames=4)
    assert sorted(by) == [1, 2, 3, 4] and len(by[3]) == 0
    np.testing.assert_allclose(by[2][0], [10, 20, 15, 25, 0.9])
    assert len(detections_by_frame(rows, min_score=0.3)[2]) == 1
    gt = np.array([[1, 1, 0, 0, 5, 5, 1, 1, 0.9, -1], [1, 2, 0, 0, 5, 5, 1, 1, 0.1, -1],
                   [1, 3, 0, 0, 5, 5, 0, 1, 1.0, -1], [1, 4, 0, 0, 5, 5, 1, 7, 1.0, -1]])
    assert filter_gt(gt, min_visibility=0.25)[:, 1].tolist() == [1]
    assert filter_gt(gt, keep_ignored=True)[:, 1].tolist() == [1, 2, 3]
