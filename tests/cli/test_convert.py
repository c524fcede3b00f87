"""`det convert ...` end to end through the real entry point (one test in a subprocess, the rest
in-process through det.cli.main.main): outputs, --json, exit codes, --force."""
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "convert"))
from convert_trees import make_cityscapes, make_crowdhuman, make_mot, make_voc, make_yolo  # noqa: E402

SUBCOMMANDS = ["cityscapes", "voc", "images2coco", "mot", "mot-reid", "crowdhuman", "youtubevis", "yolo2coco",
               "coco2yolo", "publish", "torchvision-weights", "mmdet-weights"]


def test_every_subcommand_has_help_with_example():
    from typer.testing import CliRunner

    from det.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["convert", "--help"], terminal_width=200)
    assert r.exit_code == 0
    available = [name for name in SUBCOMMANDS if name in r.output]
    assert available == SUBCOMMANDS
    for name in available:
        r = runner.invoke(app, ["convert", name, "--help"], terminal_width=400)
        assert r.exit_code == 0 and "Example: det convert " + name in r.output


def test_cityscapes_json_report_and_force(det, tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    r = det("convert", "cityscapes", root, "--out-dir", tmp_path / "ann", "--nproc", "2", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(Path(x["file"]).name, x["annotations"]) for x in rows] == [
        ("instancesonly_filtered_gtFine_train.json", 4), ("instancesonly_filtered_gtFine_val.json", 4)]
    r = det("convert", "cityscapes", root, "--out-dir", tmp_path / "ann")
    assert r.returncode == 2 and "instancesonly_filtered_gtFine_train.json: already exists (use --force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = det("convert", "cityscapes", root, "--out-dir", tmp_path / "ann", "--force")
    assert r.returncode == 0 and "instancesonly_filtered_gtFine_val.json" in r.stdout


def test_layout_errors_exit_2_naming_the_file(det_inproc, tmp_path):
    det = det_inproc
    devkit = make_voc(tmp_path / "VOCdevkit")
    (devkit / "VOC2007/Annotations/000001.xml").write_text("<annotation>")
    r = det("convert", "voc", devkit)
    assert r.returncode == 2 and "000001.xml:1: invalid XML" in r.stderr and "Traceback" not in r.stderr
    root = make_mot(tmp_path / "MOT17")
    (root / "train/MOT17-02-FRCNN/seqinfo.ini").write_text("[Sequence]\nname=other\n")
    r = det("convert", "mot", root, "--out-dir", tmp_path / "m")
    assert r.returncode == 2 and "MOT17-02-FRCNN/seqinfo.ini: bad [Sequence] section" in r.stderr
    ch = make_crowdhuman(tmp_path / "ch")
    (ch / "annotation_train.odgt").write_text("[]\n")
    r = det("convert", "crowdhuman", ch, "--out-dir", tmp_path / "c")
    assert r.returncode == 2 and "annotation_train.odgt:1: record without an 'ID' field" in r.stderr
    r = det("convert", "youtubevis", tmp_path, "--out-dir", tmp_path / "y", "--version", "2021")
    assert r.returncode == 2 and "no YouTube-VIS 2021 annotation file" in r.stderr


def test_yolo_round_trip_cli(det_inproc, tmp_path):
    det = det_inproc
    root = make_yolo(tmp_path / "ds")
    r = det("convert", "yolo2coco", root / "data.yaml", "--out-dir", tmp_path / "coco", "--split", "train")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "coco/val.json").exists()
    r = det("convert", "coco2yolo", tmp_path / "coco/train.json", "--out-dir", tmp_path / "back", "--img-dir", root,
            "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["objects"] == 3
    assert (tmp_path / "back/labels/train/a.txt").read_text() == (root / "labels/train/a.txt").read_text()


def test_publish_cli(det_inproc, tmp_path):
    det = det_inproc
    torch.save({"state_dict": {"w": torch.ones(2)}, "optimizer": {"state": {}}, "meta": {"epoch": 1}}, tmp_path / "c.pt")
    r = det("convert", "publish", tmp_path / "c.pt", tmp_path / "pub.pt", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)[0]
    assert Path(info["file"]).name == f"pub-{info['sha256'][:8]}.pt" and info["dropped"] == ["optimizer"]


def test_weights_cli(det_inproc, tmp_path):
    det = det_inproc
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    r = det("convert", "torchvision-weights", tmp_path / "r18.pth", tmp_path / "r18_det.pt", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)[0]
    assert row["dropped"] == ["fc.weight", "fc.bias"] and row["tensors"] == 120
    r = det("convert", "torchvision-weights", tmp_path / "r18.pth", tmp_path / "r18_det.pt")
    assert r.returncode == 2 and "r18_det.pt: already exists" in r.stderr
    r = det("convert", "mmdet-weights", tmp_path / "r18.pth", tmp_path / "o.pt", "--preset", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "nope.yaml" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    r = det("convert", "publish", tmp_path / "junk.pth", tmp_path / "p.pt")
    assert r.returncode == 2 and "junk.pth: not a loadable checkpoint" in r.stderr
