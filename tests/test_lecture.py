"""The lecture items: every item's command at the tiny preset (its sweeps, then its analysis and
section), and the analyses' own pieces on inputs with known answers."""

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kstest

from disent.lecture import item_names, item_spec
from disent.lecture.capacity import order_holds, order_verdict, shared_latents
from disent.lecture.cli import Plan, index_table, main, plan, sweep_commands, unrecorded_commands
from disent.lecture.infogan_digits import claim_verdict, matched_accuracy
from disent.lecture.measures import batch_capacity_gap, information_bound
from disent.lecture.metric_table import kept_baselines
from disent.lecture.page import Section, replace_marked, update_section
from disent.lecture.samples_vs_means import weakest_and_strongest
from disent.lecture.study_findings import (
    PAPER,
    model_minor,
    pairs,
    variance_shares,
    without_collapsed,
)
from disent.lecture.theorem import (
    collapsed,
    empirical_marginals,
    entangling_bijection,
    flat_orthogonal,
    random_orthogonal,
    uniform_marginals,
    with_noise,
)
from disent.metrics.beta_vae import beta_vae_score
from disent.metrics.udr import gaussian_kl
from disent.results import git_version


@pytest.fixture(scope="module")
def lecture(tmp_path_factory) -> Path:
    """Every item run at the tiny preset into one directory (items that share an experiment share its
    jobs), once for the session: the pytest-xdist workers share it (the first to ask builds it,
    under a lock). Tests only read it; one that writes works on its own copy."""
    base = tmp_path_factory.getbasetemp()
    # the workers' common directory
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "lecture"
    with open(shared / "lecture.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here until the items are done
        if not (root / "done").exists():
            shutil.rmtree(root, ignore_errors=True)  # what a failed build left
            root.mkdir()
            markers = "<!-- lecture:index:begin -->\nold\n<!-- lecture:index:end -->"
            (root / "README.md").write_text(f"# a project\n\n{markers}\nrest\n")
            main(
                [
                    "run",
                    "all",
                    "--preset",
                    "tiny",
                    "--out",
                    str(root / "out"),
                    "--docs",
                    str(root / "docs"),
                    "--readme",
                    str(root / "README.md"),
                ]
            )
            (root / "done").touch()
    return root


def _section(page: str, name: str) -> str:
    found = re.search(
        f"<!-- lecture:{name}:begin -->\n(.*?)\n<!-- lecture:{name}:end -->", page, flags=re.S
    )
    assert found, f"no section for {name}"
    return found.group(1)


@pytest.mark.slow
def test_every_item_runs_at_the_tiny_preset_and_writes_its_section_with_its_figures(lecture):
    page = (lecture / "docs" / "README.md").read_text()
    assert len(item_names()) == 10
    for name in item_names():
        section = _section(page, name)
        spec = item_spec(name)
        assert section.startswith(f'<a id="{name}"></a>\n\n## {spec["number"]}. {spec["title"]}')
        assert "Not enough completed jobs" not in section and "No completed" not in section, (
            section[-600:]
        )
        assert f"disent-lecture run {name} --preset tiny" in section and "| 0 / " not in section
        figures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", section)
        for figure in figures:
            assert (lecture / "docs" / name / figure).stat().st_size > 0, (name, figure)
        assert "| " in section  # every item reports its numbers in a table
    sizes = sum(p.stat().st_size for p in (lecture / "docs").rglob("*.png"))
    assert sizes < 1_500_000  # small PNGs, even for untrained models' noisy pictures


@pytest.mark.slow
def test_a_report_rewrites_its_own_section_only(lecture, tmp_path):
    for part in ("out", "docs"):
        shutil.copytree(lecture / part, tmp_path / part)
    page = tmp_path / "docs" / "README.md"
    before = page.read_text()
    main(
        [
            "report",
            "factor_vs_beta",
            "--preset",
            "tiny",
            "--out",
            str(tmp_path / "out"),
            "--docs",
            str(tmp_path / "docs"),
        ]
    )
    after = page.read_text()
    for name in item_names():
        if name != "factor_vs_beta":
            assert _section(before, name) == _section(after, name)
    # the lecture's order
    assert [m for m in re.findall(r"lecture:(\w+):begin", after)] == ["index", *item_names()]


def _without_provenance_notes(section: str) -> str:
    """A section less the lines that say where its jobs were read from and at which commit it was made."""
    notes = ("Reproduce:", "Report made at commit")
    return "\n".join(
        line
        for line in section.splitlines()
        if line.strip() and "read from their records" not in line and not line.startswith(notes)
    )


@pytest.mark.slow
def test_a_fresh_clone_rewrites_every_section_from_the_records_alone(lecture, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(lecture / "docs", docs)
    records = sorted(p.relative_to(docs) for p in (docs / "jobs").rglob("results.json"))
    # jobs/<experiment>/<preset>/<job>
    assert len(records) >= 20 and all(p.parts[2] == "tiny" for p in records)
    assert sum(p.stat().st_size for p in (docs / "jobs").rglob("*")) < 1_000_000  # a few kB a job
    assert list((docs / "jobs" / "beta_traversals" / "tiny").glob("*/measures.json"))
    main(
        [
            "report",
            "all",
            "--preset",
            "tiny",
            "--out",
            str(tmp_path / "no_jobs_here"),
            "--docs",
            str(docs),
            "--readme",
            str(tmp_path / "README.md"),
        ]
    )
    before, after = (lecture / "docs" / "README.md").read_text(), (docs / "README.md").read_text()
    for name in item_names():
        assert _without_provenance_notes(_section(after, name)) == _without_provenance_notes(
            _section(before, name)
        )
        assert "read from their records" in _section(after, name), name


def test_records_of_another_length_are_ignored_a_job_here_shadows_its_record_and_measures_are_kept(
    tmp_path,
):
    import json

    from disent.lecture.runs import JobGone, Runs

    def write_job(root: Path, name: str, steps: int) -> Path:
        (root / "e" / "cpu" / name).mkdir(parents=True)
        results = {
            "status": "completed",
            "seed": 0,
            "max_steps": steps,
            "hyperparameter": {"value": 1},
        }
        (root / "e" / "cpu" / name / "results.json").write_text(json.dumps(results))
        return root / "e" / "cpu" / name

    write_job(tmp_path / "records", "a", 10)
    write_job(tmp_path / "records", "stale", 99)
    write_job(tmp_path / "records", "b", 10)
    here = write_job(tmp_path / "out", "b", 10)
    runs = Runs(
        tmp_path / "out",
        "cpu",
        ["e"],
        records=tmp_path / "records",
        plans={"e": Plan(1, 10, [0], {})},
    )
    jobs = runs.jobs("e")
    assert [(job.name, job.trained) for job in jobs] == [("a", False), ("b", True)]
    with pytest.raises(JobGone, match="train the job again"):
        jobs[0].measure("x", lambda: 1)
    calls = []
    assert jobs[1].measure("x", lambda: calls.append(1) or [1.5]) == [1.5]
    # kept
    assert jobs[1].measure("x", lambda: calls.append(1) or [2.5]) == [1.5] and len(calls) == 1
    (here / "results.json").write_text(
        json.dumps({"status": "completed", "seed": 0, "max_steps": 10, "x": 1})
    )
    assert runs.jobs("e")[1].measure("x", lambda: [2.5]) == [2.5]  # new results: measured again
    assert runs.keep_records() == [tmp_path / "records" / "e" / "cpu" / "b"]
    assert json.loads((tmp_path / "records/e/cpu/b/measures.json").read_text())["values"] == {
        "x": [2.5]
    }


def test_a_job_trained_before_its_experiments_file_changed_is_not_the_plans(tmp_path):
    import json

    from disent.lecture.runs import Runs

    planned = Plan(2, 10, [0], {"seed": ["0", "1"]}, {"model.beta": 4, "model.init": None})
    for name, model in [("old", {"beta": 4}), ("now", {"beta": 4}), ("other", {"beta": 8})]:
        job = tmp_path / "records" / "e" / "cpu" / name
        job.mkdir(parents=True)
        results = {"status": "completed", "seed": 0, "max_steps": 10}
        (job / "results.json").write_text(json.dumps(results))
        (job / "config.yaml").write_text(json.dumps({"model": model}))  # JSON is YAML
    now = tmp_path / "records" / "e" / "cpu" / "now" / "config.yaml"
    now.write_text(json.dumps({"model": {"beta": 4, "init": None}}))
    runs = Runs(tmp_path / "out", "cpu", ["e"], records=tmp_path / "records", plans={"e": planned})
    # a config without the key (written before it existed) reads as null; β = 8 is another plan's
    assert [job.name for job in runs.jobs("e")] == ["now", "old"]
    glorot = Plan(2, 10, [0], {"seed": ["0", "1"]}, {"model.beta": 4, "model.init": "glorot"})
    assert (
        Runs(
            tmp_path / "out", "cpu", ["e"], records=tmp_path / "records", plans={"e": glorot}
        ).jobs("e")
        == []
    )


@pytest.mark.slow
def test_the_index_lists_every_item_with_its_headline_in_the_page_and_the_readme(lecture):
    readme = (lecture / "README.md").read_text()
    assert readme.startswith(
        "# a project\n\n<!-- lecture:index:begin -->\n| # | item |"
    ) and readme.endswith("rest\n")
    index = _section(readme, "index")
    rows = [line for line in index.splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == len(item_names()) and "\nold\n" not in readme
    for row, name in zip(rows, item_names(), strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == f"[`{name}`](docs/lecture/README.md#{name})"
        assert (
            cells[2] == f"`disent-lecture run {name} --preset tiny`"
            and cells[3] == "10"
            and cells[4] == "0"
        )
        assert cells[7] != "not run yet" and cells[9] in ("holds", "partly", "fails", "—"), row
    page_index = _section((lecture / "docs" / "README.md").read_text(), "index")
    assert "](#beta_traversals)" in page_index and "](docs/" not in page_index


def test_an_item_not_reported_yet_shows_its_plan_in_the_index(tmp_path):
    rows = [line for line in index_table(tmp_path, "cpu").splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == len(item_names()) and all("not reported yet" in row for row in rows)
    beta = next(row for row in rows if "`beta_traversals`" in row)
    assert "| 30,000 | 0-2 | 0 / 6 |" in beta  # β = 1, 16 × seeds 0-2 at the cpu length


@pytest.mark.slow
def test_a_report_into_other_docs_leaves_the_projects_readme_alone(tmp_path, monkeypatch):
    markers = "<!-- lecture:index:begin -->\nthe project's table\n<!-- lecture:index:end -->\n"
    (tmp_path / "README.md").write_text(markers)
    monkeypatch.chdir(tmp_path)
    main(["report", "capacity", "--preset", "tiny", "--out", "out", "--docs", "elsewhere"])
    assert (tmp_path / "README.md").read_text() == markers and (
        tmp_path / "elsewhere" / "README.md"
    ).is_file()
    # the default docs: the README follows them
    main(["report", "capacity", "--preset", "tiny", "--out", "out"])
    assert "the project's table" not in (tmp_path / "README.md").read_text()


def test_replace_marked_leaves_a_file_without_markers_alone(tmp_path):
    plain = tmp_path / "README.md"
    plain.write_text("no markers\n")
    assert not replace_marked(plain, "index", "table") and plain.read_text() == "no markers\n"
    assert (
        not replace_marked(tmp_path / "missing.md", "index", "table")
        and not (tmp_path / "missing.md").exists()
    )


@pytest.mark.slow
def test_items_share_the_jobs_of_an_experiment_and_unknown_items_are_refused(tmp_path, capsys):
    first = sweep_commands("beta_traversals", "cpu", tmp_path, [])["beta_traversals"]
    shared = sweep_commands("theorem", "cpu", tmp_path, [])["beta_traversals"]
    assert first == shared and f"hydra.sweep.dir={tmp_path}/beta_traversals/cpu" in first
    with pytest.raises(SystemExit) as refused:
        main(["report", "no_such_item"])
    assert refused.value.code == 2 and "no lecture item 'no_such_item'" in capsys.readouterr().err


def test_the_plan_counts_the_grid_with_the_command_lines_values_in_place():
    grid = {"model.beta": ["1", "16"], "seed": ["0", "1", "2"]}
    planned = plan("beta_traversals", [])
    assert (planned.jobs, planned.steps, planned.seeds, planned.grid) == (6, 30000, [0, 1, 2], grid)
    assert planned.fixed["model.init"] is None and planned.fixed["loader.batch_size"] == 64
    assert "model.beta" not in planned.fixed and planned.fixed["dataset.name"] == "dsprites"
    short = plan("beta_traversals", ["seed=0", "threads=1", "trainer.max_steps=10"])
    assert (short.jobs, short.steps, short.seeds) == (2, 10, [0])
    assert short.grid == {"model.beta": ["1", "16"], "seed": ["0"]}
    assert plan("noisy_beta_vae", ["seed=range(0,50)", "model.beta=1,2,4,6,8,16"]).jobs == 300


def test_every_lecture_experiment_composes_into_a_valid_config_with_its_grid():
    from disent.config import CONF_DIR, load_config
    from disent.schema import validate_train_config

    experiments = sorted((CONF_DIR / "experiment" / "lecture").glob("*.yaml"))
    named = {e for name in item_names() for e in item_spec(name)["experiments"]}
    assert named <= {path.stem for path in experiments}  # every item's experiments exist
    for path in experiments:
        cfg = load_config([f"experiment=lecture/{path.stem}"])
        validate_train_config(cfg)
        assert cfg.study_name.startswith("lecture_")


def test_update_section_keeps_the_others_in_order(tmp_path):
    page = tmp_path / "README.md"
    update_section(page, "b", ["a", "b", "c"], "B one")
    update_section(page, "a", ["a", "b", "c"], "A")
    update_section(page, "b", ["a", "b", "c"], "B two")
    text = page.read_text()
    assert text.index("A") < text.index("B two") and "B one" not in text


def test_the_entangling_bijection_keeps_the_marginals_and_mixes_every_dimension():
    rng = np.random.default_rng(0)
    sizes = np.array([3.0, 6.0, 32.0])
    z = rng.random((50_000, 3)) * sizes  # independent uniform factors
    a = random_orthogonal(3, rng)
    assert np.allclose(a @ a.T, np.eye(3)) and np.abs(a).min() > 0
    fz = entangling_bijection(*uniform_marginals(sizes), a)(z)
    # the same marginal: the KS distance to U[0, size) within its 99.9% bound (1.95 / sqrt(n))
    for i in range(3):
        assert kstest(fz[:, i] / sizes[i], "uniform").statistic < 1.95 / np.sqrt(len(z))
        for j in range(3):  # ... yet every output moves with every input
            assert abs(np.corrcoef(fz[:, i], z[:, j])[0, 1]) > 0.01
    cdf, quantile = empirical_marginals(z)
    assert np.allclose(quantile(cdf(z[:100])), z[:100], atol=1e-2 * sizes)


class _DequantisedGrid:
    """Four independent factors of 4 values; an observation is its factors dequantised to U[0, 4)."""

    factor_sizes = (4, 4, 4, 4)
    num_factors = 4

    def sample_factors(self, n: int, rng) -> np.ndarray:
        return rng.integers(0, 4, size=(n, 4))

    def sample_observations_from_factors(self, factors: np.ndarray, rng) -> np.ndarray:
        return factors + rng.random(factors.shape)


def test_a_flat_rotation_takes_the_beta_vae_score_to_chance_where_a_random_one_does_not():
    rng = np.random.default_rng(0)
    flat = flat_orthogonal(4, rng)
    assert np.allclose(flat @ flat.T, np.eye(4)) and np.allclose(np.abs(flat), 0.5)
    with pytest.raises(ValueError, match="power of two"):
        flat_orthogonal(5, rng)
    scores = {}
    for name, a in (("identity", np.eye(4)), ("random", random_orthogonal(4, rng)), ("flat", flat)):
        f = entangling_bijection(*uniform_marginals(np.full(4, 4.0)), a)
        scores[name] = beta_vae_score(
            _DequantisedGrid(), f, np.random.default_rng(1), num_train=1000, num_eval=500
        )["eval_accuracy"]
    # a random A leaves each factor its own pattern of A_jk^2; a flat one gives every factor the same
    assert scores["identity"] > 0.95 and scores["random"] > 0.8
    assert scores["flat"] < 0.35  # chance: 1/4


def test_noise_pads_to_a_power_of_two_and_chance_is_what_noise_scores():
    rng = np.random.default_rng(0)
    z = rng.random((10, 5))
    padded = with_noise(z, rng)
    assert padded.shape == (10, 8) and np.array_equal(padded[:, :5], z)
    assert with_noise(rng.random((3, 10)), rng).shape == (3, 16)
    assert with_noise(rng.random((3, 8)), rng).shape == (3, 8)
    values = {
        "noise": {"mig": 0.0, "modularity": 0.7},
        "before": {"mig": 0.8, "modularity": 0.9},
        # 0.85 is near 0.9 but 0.85 > 0.7 + (0.9 - 0.7) / 2
        "after": {"mig": 0.1, "modularity": 0.85},
    }
    shown = {"MIG": "mig", "Modularity": "modularity"}
    assert collapsed(values, shown, "before", "after") == ["MIG"]


def test_matched_accuracy_finds_the_best_one_to_one_matching():
    labels = np.repeat(np.arange(10), 5)
    permuted = (labels * 3 + 1) % 10  # a perfect code under another numbering
    assert matched_accuracy(permuted, labels, 10, 10) == 1.0
    # one value: one digit
    assert matched_accuracy(np.zeros(50, dtype=int), labels, 10, 10) == pytest.approx(0.1)


def test_the_infogan_claim_holds_only_far_above_the_regular_gan():
    assert claim_verdict(0.25) == "holds"
    assert claim_verdict(0.17) == "partly"  # higher on every seed, not far
    assert claim_verdict(-0.09) == "fails"


def test_the_capacity_order_claim():
    # orientation never reached the threshold: last
    rows = [
        ("posX", 1, 3.0, 100),
        ("posY", 2, 3.0, 150),
        ("scale", 3, 2.0, 400),
        ("shape", 4, 1.0, 900),
        ("orientation", 5, 1.0, None),
    ]
    assert order_holds(rows)
    assert not order_holds([("posX", 1, 3.0, 500), *rows[1:]])  # a position after scale
    assert order_verdict(rows) == "holds"
    together = [*rows[:2], ("scale", 3, 2.0, 400), ("shape", 3, 2.0, 400), rows[4]]
    assert order_verdict(together) == "partly"  # positions first; scale and shape in one latent
    assert shared_latents(together) == [
        "scale and shape are carried most by the same latent (z3), so they were encoded together, "
        "not one after the other."
    ]
    assert order_verdict([("posX", 1, 3.0, 500), *rows[1:]]) == "fails"
    assert order_verdict([("posX", 1, 3.0, None), *rows[1:]]) == "fails"  # a position never


def test_the_seeds_table_is_symmetric_and_has_fifteen_pairs():
    assert (PAPER.to_numpy() == PAPER.to_numpy().T).all() and len(pairs(PAPER)) == 15


def test_the_information_bound_splits_the_kl_and_is_zero_for_codes_that_do_not_move():
    rng = np.random.default_rng(0)
    n = 20000
    informative = rng.normal(0, np.sqrt(1 - 0.1**2), n)  # mu spread like the prior, sigma = 0.1
    offset = np.full(n, 2.0)  # the same code for every image
    narrow = np.zeros(n)  # sigma = 0.05 around a constant mean
    mu = np.stack([informative, offset, narrow], axis=1)
    logvar = np.log(np.array([0.1, 1.0, 0.05]) ** 2)[None, :].repeat(n, axis=0)
    bound = information_bound(mu, logvar)
    kl = gaussian_kl(mu, logvar)
    spread = mu.var(axis=0) + np.exp(logvar).mean(axis=0)
    mismatch = 0.5 * (mu.mean(axis=0) ** 2 + spread - 1 - np.log(spread))
    np.testing.assert_allclose(kl, bound + mismatch, rtol=1e-10)  # KL = bound + marginal mismatch
    np.testing.assert_allclose(bound[0], np.log(1 / 0.1), rtol=0.01)  # ½ log(1 / σ²)
    np.testing.assert_allclose(bound[1:], 0, atol=1e-9)
    assert kl[1] == pytest.approx(2.0) and kl[2] > 2.0  # yet both spend KL


def test_the_capacity_penalty_of_codes_prices_their_batch_to_batch_spread_and_not_an_offset():
    rng = np.random.default_rng(0)
    n = 20000
    offset = np.full((n, 1), np.sqrt(2 * 5.0))  # KL = ½μ² = 5 nats for every image
    logvar = np.zeros((n, 1))
    assert batch_capacity_gap(offset, logvar, 5.0, 64, 2000, rng) == pytest.approx(0, abs=1e-9)
    assert batch_capacity_gap(offset, logvar, 4.0, 64, 2000, rng) == pytest.approx(1.0)
    informative = rng.normal(0, np.sqrt(10.0), (n, 1))  # KL = ½μ²: mean 5 nats, sd 5·√2 per image
    gap = batch_capacity_gap(informative, logvar, 5.0, 64, 20000, rng)
    expected = 5 * np.sqrt(2) / np.sqrt(64) * np.sqrt(2 / np.pi)  # E|N(0, s²)| for the batch mean
    assert gap == pytest.approx(expected, rel=0.05)


def test_a_model_that_scores_noise_everywhere_can_make_the_model_explain_the_variance():
    """Two models whose scores differ only by seed and a third that scores 0 on every run: with the
    third the model explains most of the variance; the check without it says the seed does."""
    import pandas as pd

    from disent.study import STUDY_METRICS

    rng = np.random.default_rng(0)
    rows = []
    for model in ("beta_vae", "factor_vae", "annealed_vae"):
        for value in (1, 2):
            for seed in range(4):
                scores = np.zeros(6) if model == "annealed_vae" else 0.6 + 0.05 * rng.normal(size=6)
                row = {"model": model, "value": value, "seed": seed, "status": "completed"}
                row["dataset"] = "noisy_dsprites"
                row.update(dict(zip(STUDY_METRICS.values(), scores, strict=True)))
                rows.append(row)
    table_ = pd.DataFrame(rows)
    assert model_minor(variance_shares(table_)) == []
    kept = table_[table_["model"] != "annealed_vae"]
    lines, summary = without_collapsed(table_, kept, ["annealed_vae"], 0.25)
    assert len(model_minor(variance_shares(kept))) == 6
    assert summary.startswith("without annealed_vae: 6 of 6")
    assert any("model.init" in line for line in lines)  # AnnealedVAE's init is named


def test_regularisation_strength_runs_against_annealed_vaes_capacity():
    assert weakest_and_strongest("beta_vae", "beta", [1.0, 4.0, 16.0]) == (1.0, 16.0)
    # a larger c_max lets the KL grow: the weakest constraint is the largest capacity
    assert weakest_and_strongest("annealed_vae", "c_max", [5.0, 25.0, 100.0]) == (100.0, 5.0)
    assert weakest_and_strongest("annealed_vae", "gamma", [10.0, 1000.0]) == (10.0, 1000.0)


def test_a_claim_about_models_is_judged_only_once_every_model_has_jobs():
    section = Section("text", "model < ½ for 4 of 6", "paper", "holds")
    assert section.judged_when_all(6, 6) is section
    partial = section.judged_when_all(2, 6)
    assert (
        partial.claim == "—" and partial.measured == "partial, 2 of 6 models: model < ½ for 4 of 6"
    )
    assert partial.text == "text" and partial.paper == "paper"


def test_jobs_with_committed_records_are_not_trained_again(tmp_path):
    """`disent-lecture run` trains only the grid points without a completed record of the planned
    length (and no job directory here), as few sweeps as keep jobs side by side."""
    import json

    from omegaconf import OmegaConf

    from disent.config import load_config

    records, out = tmp_path / "records", tmp_path / "out"
    command = sweep_commands("study_findings", "cpu", out, [])["noisy_beta_vae"]
    planned = plan("noisy_beta_vae", [])  # beta 1, 4, 16 x seeds 0, 1; 6,000 steps

    def record(beta, seed, steps=6000, status="completed"):
        job = records / "noisy_beta_vae" / "cpu" / f"beta={beta}_seed={seed}"
        job.mkdir(parents=True)
        results = {"status": status, "max_steps": steps, "seed": seed}
        (job / "results.json").write_text(json.dumps(results))
        config = load_config(
            ["experiment=lecture/noisy_beta_vae", f"model.beta={beta}", f"seed={seed}"]
        )
        OmegaConf.save(config, job / "config.yaml")  # as the job's .hydra/config.yaml

    def sweeps():
        found = unrecorded_commands(command, "noisy_beta_vae", "cpu", planned, records, out)
        return [[p for p in c if p.startswith(("model.beta=", "seed="))] for c in found]

    assert unrecorded_commands(command, "noisy_beta_vae", "cpu", planned, records, out) == [command]
    record(1, 0)
    record(1, 1)
    record(4, 0, steps=2000)  # another length: trained again
    record(16, 1, status="failed")  # not completed: trained again
    assert sweeps() == [["model.beta=4,16", "seed=0,1"]]  # the rest is still a grid: one sweep
    stale = records / "noisy_beta_vae" / "cpu" / "beta=1_seed=1" / "config.yaml"
    stale.write_text(stale.read_text().replace("init: null", "init: glorot"))
    trained_again = [["model.beta=4,16", "seed=0,1"], ["model.beta=1", "seed=1"]]
    assert sweeps() == trained_again  # its record was trained with another init
    stale.write_text(stale.read_text().replace("init: glorot", "init: null"))
    record(16, 0)
    assert sweeps() == [["model.beta=4", "seed=0,1"], ["model.beta=16", "seed=1"]]
    (out / "noisy_beta_vae" / "cpu" / "beta=1_seed=0").mkdir(parents=True)
    (out / "noisy_beta_vae" / "cpu" / "beta=1_seed=0" / "results.json").write_text("{}")
    assert sweeps()[0] == ["model.beta=1", "seed=0"]  # a job directory here: it resumes
    for beta, seed in ((4, 1), (16, 1)):
        shutil.rmtree(records / "noisy_beta_vae" / "cpu" / f"beta={beta}_seed={seed}", True)
        record(beta, seed)
    shutil.rmtree(records / "noisy_beta_vae" / "cpu" / "beta=4_seed=0")
    record(4, 0)
    shutil.rmtree(out)
    assert sweeps() == []  # every job recorded: nothing to train
    fixed = [p for p in command if not p.startswith(("model.beta=", "seed="))]
    record_dir = records / "noisy_beta_vae" / "cpu"
    shutil.rmtree(record_dir / "beta=16_seed=0")
    (commands,) = [unrecorded_commands(command, "noisy_beta_vae", "cpu", planned, records, out)]
    assert commands == [[*fixed, "model.beta=16", "seed=0"]]  # the rest of the command kept


def test_a_report_cites_its_commit_as_dirty_only_for_uncommitted_changes_to_what_runs(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path), *args],
            check=True,
            capture_output=True,
        )

    (tmp_path / "docs").mkdir()
    for name in ("code.py", "conf.yaml", "README.md", "docs/page.md", "docs/figure.png"):
        (tmp_path / name).write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    clean = git_version(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    for written_by_reports in ("README.md", "docs/page.md", "docs/figure.png"):
        (tmp_path / written_by_reports).write_text("b\n")
    assert git_version(tmp_path)["dirty"] is False
    (tmp_path / "conf.yaml").write_text("b\n")
    assert git_version(tmp_path)["dirty"] is True
    assert git_version(tmp_path / "docs" / "not a checkout") == {}


def test_baseline_scores_are_kept_for_their_settings_and_computed_again_for_others(tmp_path):
    path = tmp_path / "metric_table" / "baselines.json"
    calls = []

    def compute():
        calls.append(1)
        return {"scores": {"raw pixels": [50.0 + len(calls)]}, "spread": 0.1}

    key = {"seeds": (0, 1), "fit_points": 200}
    first = kept_baselines(path, key, compute)
    # the same settings (a tuple reads back as a list): read from the file, not computed
    again = kept_baselines(path, {"seeds": [0, 1], "fit_points": 200}, compute)
    assert len(calls) == 1 and again == first and first["scores"]["raw pixels"] == [51.0]
    assert "version" in first["code"] and first["seconds"] >= 0
    other = kept_baselines(path, {"seeds": [0, 1], "fit_points": 300}, compute)
    assert len(calls) == 2 and other["scores"]["raw pixels"] == [52.0]
    path.write_text("{ not json")  # a damaged file is computed again, not an error
    assert kept_baselines(path, key, compute)["scores"]["raw pixels"] == [53.0]
