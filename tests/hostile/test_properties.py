"""Property tests: malformed COCO / MOT / YOLO / VOC records and random option values end in
success or a user error (DetError, exit 2), never an internal error (issue 16, acceptance)."""
from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from det.core.errors import DetError

NUMBER = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.just(0),
                   st.text(max_size=3), st.none(), st.booleans())
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _ok_or_user_error(fn, *args):
    try:
        fn(*args)
    except DetError:
        pass


@st.composite
def coco_files(draw):
    images = draw(st.lists(st.fixed_dictionaries({"id": st.one_of(st.integers(0, 3), NUMBER), "file_name": st.sampled_from(
        ["a.png", "../x.png", "/abs.png", "", "sub/b.png"]), "width": NUMBER, "height": NUMBER}), max_size=3))
    anns = draw(st.lists(st.fixed_dictionaries({"id": st.integers(0, 5), "image_id": st.one_of(st.integers(0, 3), NUMBER),
                                                "category_id": st.one_of(st.integers(0, 2), NUMBER),
                                                "bbox": st.one_of(st.lists(NUMBER, max_size=5), NUMBER),
                                                "iscrowd": st.integers(0, 1)}), max_size=4))
    cats = draw(st.lists(st.fixed_dictionaries({"id": st.one_of(st.integers(1, 2), NUMBER), "name": st.text(max_size=3)}),
                         max_size=2))
    return {"images": images, "annotations": anns, "categories": cats}


@SETTINGS
@given(data=coco_files())
def test_coco_records(tmp_path_factory, data):
    from det.core.convert.yolo import coco_to_yolo
    from det.core.data.datasets.coco import CocoDataset
    from det.core.evaluation.coco import check_results, load_coco_gt

    folder = tmp_path_factory.mktemp("coco")
    ann = folder / "ann.json"
    ann.write_text(json.dumps(data))
    _ok_or_user_error(lambda: CocoDataset(str(ann), test_mode=False))
    _ok_or_user_error(lambda: coco_to_yolo(ann, folder / "yolo", force=True))
    for dirpath in (folder / "yolo").rglob("*.txt"):
        for line in dirpath.read_text().split():
            assert "nan" not in line.lower() and "inf" not in line.lower()

    def results():
        coco = load_coco_gt(data)
        check_results([{"image_id": a.get("image_id"), "category_id": a.get("category_id"), "bbox": a.get("bbox"),
                        "score": a.get("id")} for a in data["annotations"]], coco)
    _ok_or_user_error(results)


@SETTINGS
@given(rows=st.lists(st.lists(st.one_of(st.integers(-5, 5).map(str), st.floats().map(str), st.text(max_size=2)),
                              min_size=0, max_size=10), max_size=4))
def test_mot_rows(tmp_path_factory, rows):
    from det.core.convert.mot import parse_det, parse_gt

    path = tmp_path_factory.mktemp("mot") / "gt.txt"
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    for parse in (parse_gt, parse_det):
        try:
            out = parse(path)
        except DetError:
            continue
        values = [v for _, ann, _ in out for v in ann["bbox"]] if parse is parse_gt else \
            [v for boxes in out.values() for b in boxes for v in b]
        assert all(math.isfinite(v) for v in values)


@SETTINGS
@given(lines=st.lists(st.lists(st.one_of(st.floats().map(str), st.integers(-2, 3).map(str), st.text(max_size=2)),
                               max_size=9), max_size=4))
def test_yolo_label_lines(tmp_path_factory, lines):
    from det.core.convert.yolo import parse_label_file

    path = tmp_path_factory.mktemp("yolo") / "a.txt"
    path.write_text("".join(" ".join(v.replace("\n", "") for v in line) + "\n" for line in lines))
    try:
        objects = parse_label_file(path, 3)
    except DetError:
        return
    assert all(0 <= c < 3 and all(math.isfinite(v) and 0 <= v <= 1 + 1e-6 for v in coords) for c, coords in objects)


@SETTINGS
@given(size=st.tuples(st.text(max_size=4), st.text(max_size=4)),
       box=st.tuples(*[st.one_of(st.floats().map(str), st.integers(-5, 80).map(str), st.text(max_size=3))] * 4),
       name=st.sampled_from(["dog", "cat", "unicorn", ""]))
def test_voc_records(tmp_path_factory, size, box, name):
    from xml.sax.saxutils import escape

    from det.core.convert.voc import parse_xml

    path = tmp_path_factory.mktemp("voc") / "a.xml"
    xmin, ymin, xmax, ymax = (escape(v) for v in box)
    path.write_text(f"<annotation><size><width>{escape(size[0])}</width><height>{escape(size[1])}</height></size>"
                    f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
                    f"<ymax>{ymax}</ymax></bndbox></object></annotation>")
    try:
        record = parse_xml((str(path), "a.jpg"))
    except DetError:
        return
    assert record["width"] > 0 and record["height"] > 0
    for _, (x1, y1, x2, y2), _ in record["objects"]:
        assert all(math.isfinite(v) for v in (x1, y1, x2, y2)) and x2 >= x1 and y2 >= y1


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(option=st.sampled_from(["--score-thr", "--workers", "--batch-size", "--overlap", "--merge-iou", "--limit"]),
       value=st.one_of(st.floats().map(str), st.integers(-10, 10).map(str), st.sampled_from(["nan", "-inf", "1e400"])))
def test_infer_option_values(det_inproc, tmp_path_factory, option, value):
    r = det_inproc("infer", "nowhere.png", "--weights", "missing.pt", option, value)
    assert r.returncode == 2, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(["train.optimizer.lr", "data.train.batch_size", "model.backbone.widen_factor",
                            "model.backbone.deepen_factor", "train.max_epochs", "data.train.num_workers",
                            "train.checkpoint.max_keep", "model.bbox_head.num_classes"]),
       value=st.one_of(st.floats().map(str), st.integers(-3, 3).map(str), st.text(max_size=4), st.just("[1, 2]")))
def test_preset_values(det_inproc, key, value):
    r = det_inproc("config", "validate", "demo/rtmdet_tiny", "--set", f"{key}={value}")
    assert r.returncode in (0, 2), r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
