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
