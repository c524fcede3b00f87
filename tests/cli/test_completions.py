from pathlib import Path

from det.cli.completions import render_all

REPO = Path(__file__).resolve().parents[2]


def test_completions_are_current():
    for name, text in render_all().items():
        path = REPO / "completions" / name
        assert path.exists(), f"{path} missing: run `make completions`"
        assert path.read_text() == text, f"{path} is stale: run `make completions`"


def test_completions_cover_every_command():
    bash = render_all()["det.bash"]
    assert '"det config show")' in bash and "--set" in bash


def test_completions_offer_preset_names_and_option_values():
    from det.cli.completions import command_tree

    tree = command_tree()
    assert "demo/rtmdet_tiny" in tree["det train"] and "demo/rtmdet_tiny" in tree["det config show"]
    assert "demo/rtmdet_tiny" not in tree["det synth shapes"]  # only where a preset goes
    scripts = render_all()
    assert '"--format") echo "json jsonl coco"' in scripts["det.bash"]
    assert '"--track") echo "bytetrack sort ocsort' in scripts["_det"]
    assert "-l format -x -a 'json jsonl coco'" in scripts["det.fish"]
