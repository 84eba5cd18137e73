"""Shared test settings. The suite runs on two pytest-xdist workers (pyproject.toml's addopts), so each worker
and every process it starts uses one thread: two workers with two threads each would oversubscribe the cores,
which slows training several-fold."""

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the subprocesses and joblib workers the tests start
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread_each():
    """Some tests change torch's thread count; the next test on this worker starts from one thread again."""
    yield
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
