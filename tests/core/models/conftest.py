"""Model tests run single-threaded: their tensors are tiny, and on a busy 2-core machine
OpenMP threads spinning against each other made them 10x slower."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
