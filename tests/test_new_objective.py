"""A new VAE objective is one class with its schema and one YAML file: the README's own example,
written to files as it stands there, trains alone and in a stack (its stacked member equal to its
single run), is scored by disent-eval from its checkpoint, and a module that cannot be imported is
one clear error."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from disent.checkpoints import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "model.net=mlp",
    "model.hidden_dim=32",
    "trainer.max_steps=6",
    "trainer.log_every_n_steps=1",
    "metrics=none",
    "figures=tiny",
    "trainer.enable_progress_bar=false",
    "loader.batch_size=16",
]


def _readme_example(into: Path) -> list[str]:
    """The README's example files written into `into`; the overrides that make disent-train use them."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### A new objective") : readme.index("### What a run writes")]
    code = re.search(r"```python\n# my_objectives.py.*?\n(.*?)```", section, re.S).group(1)
    model_yaml = re.search(
        r"```yaml\n# my_conf/model/sparse_vae.yaml\n(.*?)```", section, re.S
    ).group(1)
    (into / "my_objectives.py").write_text(code)
    (into / "my_conf" / "model").mkdir(parents=True)
    (into / "my_conf" / "model" / "sparse_vae.yaml").write_text(model_yaml)
    return [
        "imports=[my_objectives]",
        f"hydra.searchpath=[file://{into / 'my_conf'}]",
        "model=sparse_vae",
    ]


def _run(where: Path, module: str, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(where), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_readmes_new_objective_trains_alone_and_stacked_and_is_scored(tmp_path):
    example = _readme_example(tmp_path)
    single = _run(
        tmp_path,
        "disent.train",
        *example,
        *SMALL,
        "model.alpha=1",
        f"hydra.run.dir={tmp_path}/alone",
    )
    assert single.returncode == 0, single.stderr[-3000:]
    results = json.loads((tmp_path / "alone" / "results.json").read_text())
    assert results["status"] == "completed" and results["model"] == "sparse_vae"
    assert results["hyperparameter"] == {"name": "alpha", "value": 1}
    assert "sparsity" in results["final_losses"]  # the objective's own logged value

    stacked = _run(
        tmp_path,
        "disent.train",
        "-m",
        "hydra/launcher=stacked",
        *example,
        *SMALL,
        "model.alpha=0,1",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    assert stacked.returncode == 0, stacked.stderr[-3000:]
    member = json.loads((tmp_path / "sweep" / "1" / "results.json").read_text())
    assert member["stack"] == {"size": 2, "member": 1} and member["status"] == "completed"
    alone = read_checkpoint(tmp_path / "alone" / "checkpoints" / "last.ckpt")["state_dict"]
    together = read_checkpoint(tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt")["state_dict"]
    for name, value in alone.items():  # the same job, trained alone and as a stack's member
        torch.testing.assert_close(together[name], value, rtol=1e-4, atol=1e-5, msg=name)

    checkpoint = tmp_path / "alone" / "checkpoints" / "last.ckpt"
    scored = _run(tmp_path, "disent.evaluate", f"checkpoint={checkpoint}", "metrics=tiny")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads((tmp_path / "alone" / "metrics.json").read_text())["model"] == "sparse_vae"


@pytest.mark.slow
def test_an_import_that_fails_is_one_clear_error(tmp_path):
    done = _run(
        tmp_path,
        "disent.train",
        "imports=[no_such_module]",
        *SMALL,
        f"hydra.run.dir={tmp_path}/job",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "imports: cannot import 'no_such_module'" in done.stderr
