import json



def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_shapes_is_byte_identical_for_a_seed(tmp_path, det_inproc):
    run_det = det_inproc
    args = ["--num-train", "3", "--num-val", "2", "--size", "64"]
    a = run_det("synth", "shapes", tmp_path / "a", *args, "--seed", "1", "--json")
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout)["classes"] == ["circle", "square", "triangle", "star", "hexagon", "cross"]
    assert run_det("synth", "shapes", tmp_path / "b", *args, "--seed", "1").returncode == 0
    assert run_det("synth", "shapes", tmp_path / "c", *args, "--seed", "2").returncode == 0
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert set(fa) == {"instances_train.json", "instances_val.json", "train/000000.png", "train/000001.png",
                       "train/000002.png", "val/000000.png", "val/000001.png"}
    assert fa == fb
    assert fa["train/000000.png"] != fc["train/000000.png"]
    doc = json.loads(fa["instances_train.json"])
    assert len(doc["images"]) == 3 and all(isinstance(a["segmentation"], list) for a in doc["annotations"])
    # no silent overwrite
    again = run_det("synth", "shapes", tmp_path / "a", *args)
    assert again.returncode == 2 and "instances_train.json: already exists (use --force" in again.stderr
    assert run_det("synth", "shapes", tmp_path / "a", *args, "--force").returncode == 0


def test_synth_shapes_object_sizes(tmp_path, det_inproc):
    ok = det_inproc("synth", "shapes", tmp_path / "a", "--num-train", "2", "--num-val", "0", "--size", "64",
                    "--min-object-size", "20", "--max-object-size", "30", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["min_object_size"] == 20
    bad = det_inproc("synth", "shapes", tmp_path / "b", "--size", "64", "--min-object-size", "40", "--max-object-size", "30")
    assert bad.returncode == 2 and "--min-object-size/--max-object-size" in bad.stderr


def test_synth_shapes_panoptic(tmp_path, det_inproc):
    args = ["--panoptic", "--num-train", "2", "--num-val", "1", "--size", "64", "--json"]
    res = det_inproc("synth", "shapes", tmp_path / "p", *args)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["panoptic"] is True and info["classes"][-3:] == ["sky", "ground", "wall"]
    files = _files(tmp_path / "p")
    assert {"panoptic_train.json", "panoptic_val.json", "panoptic_train/000001.png", "train/000001.png"} <= set(files)
    again = det_inproc("synth", "shapes", tmp_path / "p", *args)
    assert again.returncode == 2 and "panoptic_train.json: already exists (use --force" in again.stderr
