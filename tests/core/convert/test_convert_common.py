"""parallel_map: same results and order over a pool, worker errors reach the caller intact."""
import pytest

from det.core.convert.common import parallel_map, plan_outputs
from det.core.errors import DataError, DetError


def square_or_fail(x: int) -> int:
    if x == 13:
        raise DataError(f"item{x}.txt:1: bad value")
    return x * x


def test_pool_keeps_order_and_matches_serial():
    items = list(range(40))
    assert parallel_map(square_or_fail, items[:13], 2, "t", min_parallel=1) == [x * x for x in items[:13]]
    assert parallel_map(square_or_fail, items[:12], 1, "t") == [x * x for x in items[:12]]


@pytest.mark.parametrize("nproc", [1, 2])
def test_worker_error_propagates(nproc):
    with pytest.raises(DataError, match=r"item13.txt:1: bad value"):
        parallel_map(square_or_fail, list(range(20)), nproc, "t", min_parallel=1)


def test_plan_outputs_checks_everything_first(tmp_path):
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(DetError, match="b.json: already exists"):
        plan_outputs([tmp_path / "a.json", tmp_path / "b.json"], force=False)
    assert plan_outputs([tmp_path / "b.json"], force=True) == [tmp_path / "b.json"]
