"""Paths read from data files never leave their folder (issue 16, kind 'paths')."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tests.hostile.conftest import assert_user_error, box, files_under, image, write_coco


@pytest.fixture
def img_dir(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((32, 32, 3), np.uint8))
    return folder


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "sub/../../secret.png"])
@pytest.mark.parametrize("mode", ["copy", "symlink", "none"])
def test_coco2yolo_file_name_outside_img_dir(det_inproc, tmp_path, img_dir, name, mode):
    ann = write_coco(tmp_path / "ann.json", [image(name=name)], [box()])
    out = tmp_path / "yolo"
    r = det_inproc("convert", "coco2yolo", ann, "--out-dir", out, "--img-dir", img_dir, "--image-mode", mode)
    assert_user_error(r, "ann.json", "images[0]" if mode == "none" else "file_name", repr(name))
    assert files_under(out) == []


def test_coco2yolo_symlink_out_of_img_dir(det_inproc, tmp_path, img_dir):
    secret = tmp_path / "secret.png"
    cv2.imwrite(str(secret), np.zeros((8, 8, 3), np.uint8))
    os.symlink(secret, img_dir / "link.png")
    ann = write_coco(tmp_path / "ann.json", [image(name="a.png"), image(2, "link.png")], [box()])
    out = tmp_path / "yolo"
    r = det_inproc("convert", "coco2yolo", ann, "--out-dir", out, "--img-dir", img_dir, "--image-mode", "copy")
    assert_user_error(r, "ann.json", "link.png", "symlink")
    assert files_under(out) == []


@pytest.mark.parametrize("split", ["../../x", "a/b", "..", "."])
def test_coco2yolo_split_must_be_a_plain_name(det_inproc, tmp_path, img_dir, split):
    ann = write_coco(tmp_path / "ann.json", [image()], [box()])
    out = tmp_path / "deep" / "yolo"
    r = det_inproc("convert", "coco2yolo", ann, "--out-dir", out, "--split", split)
    assert_user_error(r, "--split", repr(split))
    assert files_under(tmp_path / "deep") == [] and not (tmp_path / "x.txt").exists()


def test_coco2yolo_inside_paths_still_work(det_inproc, tmp_path, img_dir):
    ann = write_coco(tmp_path / "ann.json", [image(name="./a.png")], [box()])
    out = tmp_path / "yolo"
    r = det_inproc("convert", "coco2yolo", ann, "--out-dir", out, "--img-dir", img_dir, "--image-mode", "copy")
    assert r.returncode == 0, r.stderr
    assert (out / "images" / "train" / "a.png").is_file()
    assert (out / "labels" / "train" / "a.txt").read_text().split()[0] == "0"
