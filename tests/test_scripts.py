"""The prepared device check runs end to end: scripts/gpu_check.sh's CPU fallback (its CI-sized form)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_its_cpu_fallback():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--cpu"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "the CPU fallback" in out and " passed" in out and "failed" not in out
    # each sweep's models/hour beside the basic launcher's
    for launcher in ("basic", "stacked K=2"):
        assert re.search(rf"this code +{launcher} +\d+ jobs .* models/hour .* images/s", out), out[
            -3000:
        ]
    assert "a stack of 2, members called with vmap" in out and "top rows by self time" in out
