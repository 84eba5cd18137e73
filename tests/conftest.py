"""Shared test settings. The suite runs on two pytest-xdist workers (pyproject.toml's addopts), so each
worker and every process it starts uses one thread: two workers with two threads each would
oversubscribe the cores, which slows training several-fold."""

import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = (
        "1"  # inherited by the subprocesses and joblib workers the tests start
    )
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread_each():
    """Some tests change torch's thread count; the next test on this worker starts from one thread again."""
    yield
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def run_in_process(
    module: str, *arguments: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m <module> <arguments>` run in this worker: the command's own `main()`, with its exit
    code, stdout and stderr, but without a new Python that imports torch and Lightning again (~6 s a
    command, more than the tiny runs cost). For tests of what a command does; a test of the process
    itself (signals, a kill, a clean interpreter, another working directory's imports) starts a real
    one. An exception that would end the process with a traceback is returned as exit code 1 with
    the traceback on stderr, as Python would."""
    from hydra.core.global_hydra import GlobalHydra

    entry = importlib.import_module(module).main
    argv, directory = sys.argv, os.getcwd()
    root = logging.getLogger()
    handlers, level = (
        root.handlers[:],
        root.level,
    )  # Hydra configures logging for its run; put it back after
    stdout, stderr = io.StringIO(), io.StringIO()
    sys.argv = [module, *arguments]
    GlobalHydra.instance().clear()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                entry()
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(directory)
        GlobalHydra.instance().clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    return subprocess.CompletedProcess(
        [module, *arguments], code, stdout.getvalue(), stderr.getvalue()
    )
