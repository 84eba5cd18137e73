"""`disent-lecture`: train and report the lecture's items (see disent/lecture/__init__.py)."""

import argparse
import itertools
import json
import shlex
import sys
from functools import cache
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from disent.lecture import (
    ITEMS,
    PRESETS,
    analysis,
    item_names,
    item_spec,
    preset_overrides,
    sweep_dir,
)
from disent.lecture.page import Section, cited_commit, hours, replace_marked, table, update_section
from disent.lecture.runs import Plan, Runs, read_jobs
from disent.results import code_version, write_atomic

SECTIONS = ["index", *ITEMS]  # the page's sections in order: the index table, then the items
DEFAULT_DOCS = Path("docs/lecture")
# <docs>/jobs/<experiment>/<preset>/<job>: the jobs' records (disent/lecture/runs.py)
RECORDS = "jobs"


def item_overrides(name: str, experiment: str, preset: str) -> list[str]:
    """The overrides an item gives one of its experiments under a preset (beyond the preset's own)."""
    presets = item_spec(name)["experiments"][experiment]
    if isinstance(presets, str):  # the experiment is another item's: its overrides, its jobs
        presets = item_spec(presets)["experiments"][experiment]
    return list((presets or {}).get(preset, []))


def sweep_commands(name: str, preset: str, out: Path, extra: list[str]) -> dict[str, list[str]]:
    """{experiment: the `disent-train -m` command that runs (or resumes) its sweep} for an item."""
    return {
        experiment: [
            sys.executable,
            "-m",
            "disent.train",
            "-m",
            f"experiment=lecture/{experiment}",
            f"hydra.sweep.dir={sweep_dir(out, experiment, preset)}",
            *preset_overrides(preset),
            *item_overrides(name, experiment, preset),
            *extra,
        ]
        for experiment in item_spec(name)["experiments"]
    }


def _values(text: str) -> list[str]:
    """A sweep value as Hydra's basic sweeper expands it: `a,b,...` or `range(a,b[,step])`."""
    if text.startswith("range(") and text.endswith(")"):
        return [str(v) for v in range(*(int(part) for part in text[6:-1].split(",")))]
    return text.split(",")


def plan(experiment: str, overrides: list[str]) -> Plan:
    """An experiment's sweep: its file's `hydra.sweeper.params`, with the command line's `key=a,b,...`
    or `key=range(a,b)` values in place of a key's grid (as Hydra's basic sweeper does), and the
    other overrides applied to learn the training length."""
    return _plan(experiment, tuple(overrides))


@cache  # two Hydra compositions (~1 s); a report plans every item's sweeps for the index, again at each item
def _plan(experiment: str, overrides: tuple[str, ...]) -> Plan:
    from hydra import compose, initialize_config_dir

    from disent.config import CONF_DIR

    split = [(o, *o.partition("=")[::2]) for o in overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        grid = dict(
            compose(
                "train", overrides=[f"experiment=lecture/{experiment}"], return_hydra_config=True
            ).hydra.sweeper.params
            or {}
        )
        swept = {
            key: value
            for _, key, value in split
            if key in grid or "," in value or value.startswith("range(")
        }
        fixed = [o for o, key, _ in split if key not in swept]
        cfg = compose("train", overrides=[f"experiment=lecture/{experiment}", *fixed])
    grid = {key: _values(str(value)) for key, value in (grid | swept).items()}
    seeds = [int(seed) for seed in grid.get("seed", [cfg.seed])]
    return Plan(
        int(np.prod([len(values) for values in grid.values()])),
        int(cfg.trainer.max_steps),
        seeds,
        grid,
        Plan.fixed_keys(cfg, grid),
    )


def shown(command: list[str]) -> str:
    """A command as a user types it: `disent-train ...`."""
    return " ".join(["disent-train", *(shlex.quote(part) for part in command[3:])])


def run(
    name: str,
    preset: str,
    out: Path,
    extra: list[str],
    dry_run: bool = False,
    docs: Path | None = None,
) -> int:
    """Run every sweep of an item (finished jobs are skipped, interrupted ones resume, and jobs whose
    completed records are in `docs`/jobs are not trained again); how many failed."""
    failures = 0
    for experiment, command in sweep_commands(name, preset, out, extra).items():
        todo = [command]
        if docs is not None:
            overrides = [
                *preset_overrides(preset),
                *item_overrides(name, experiment, preset),
                *extra,
            ]
            planned = plan(experiment, overrides)
            todo = unrecorded_commands(command, experiment, preset, planned, docs / RECORDS, out)
        for part in todo:
            print(shown(part), flush=True)
            if not dry_run:
                failures += run_sweep(part[3:]) != 0  # a failed job must not stop the other sweeps
    return failures


def _same(value, text: str) -> bool:
    """Whether a config value equals a sweep value as written on the command line (a config
    group's choice, e.g. `dataset=dsprites`, is its node's `name`)."""
    if OmegaConf.is_dict(value):
        value = value.get("name")
    try:
        return float(value) == float(text)
    except (TypeError, ValueError):
        return str(value) == text


def unrecorded_commands(
    command: list[str], experiment: str, preset: str, planned: Plan, records: Path, out: Path
) -> list[list[str]]:
    """The sweep `command` cut down to its jobs that have no completed record in `records` that its
    plan fits (`Plan.fits`; committed by an earlier session or another machine, no job directory here):
    one sweep over the innermost key (the seed where it is swept) per combination of the others, so
    that the launcher still runs jobs side by side. `command` itself when no job is recorded; none
    when every job is."""
    local = {path.parent.name for path in sweep_dir(out, experiment, preset).glob("*/results.json")}
    recorded = [
        OmegaConf.load(job.dir / "config.yaml")
        for job in read_jobs(sweep_dir(records, experiment, preset), trained=False)
        if job.status == "completed" and planned.fits(job) and job.name not in local
    ]
    keys = list(planned.grid)
    if not recorded or not keys:
        return [command]
    points = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*planned.grid.values())
    ]
    missing = [
        point
        for point in points
        if not any(
            all(_same(OmegaConf.select(cfg, k), v) for k, v in point.items()) for cfg in recorded
        )
    ]
    if len(missing) == len(points):
        return [command]
    inner = "seed" if "seed" in keys else keys[-1]
    outer = [k for k in keys if k != inner]
    # the inner values missing -> the outer points that miss exactly those
    by_inner: dict[tuple, list[tuple]] = {}
    for point in missing:
        fixed = tuple(point[k] for k in outer)
        values = tuple(p[inner] for p in missing if tuple(p[k] for k in outer) == fixed)
        if fixed not in by_inner.setdefault(values, []):
            by_inner[values].append(fixed)
    kept = [part for part in command if part.split("=", 1)[0] not in keys]  # the grid's values go
    commands = []
    for values, points in by_inner.items():
        columns = [
            sorted(set(column), key=point_order(planned.grid[k]))
            for k, column in zip(outer, zip(*points), strict=True)
        ]
        # one sweep when the outer points are a grid, else one per point
        blocks = (
            [columns]
            if len(points) == int(np.prod([len(c) for c in columns]))
            else [[[v] for v in point] for point in points]
        )
        for block in blocks:
            sweep = [f"{k}={','.join(column)}" for k, column in zip(outer, block, strict=True)]
            commands.append([*kept, *sweep, f"{inner}={','.join(values)}"])
    return commands


def point_order(values: list[str]):
    """Sort key: a value's place in its grid."""
    return values.index


def run_sweep(arguments: list[str]) -> int:
    """`disent-train <arguments>` in this process (one import of torch and Lightning for all of an
    item's sweeps); its exit code. A signal stops the whole item, with the code disent-train gives
    it (128 + the signal)."""
    from hydra.core.global_hydra import GlobalHydra

    import disent.train

    argv = sys.argv
    sys.argv = ["disent-train", *arguments]
    GlobalHydra.instance().clear()
    try:
        disent.train.main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    if code >= 128:
        raise SystemExit(code)
    return code


def _span(values: list[int]) -> str:
    """0, 1, 2 as '0-2'; other lists as they are."""
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def _commit(results: dict) -> str:
    code = results.get("code") or {}
    return code.get("commit", "unrecorded")[:10] + ("+changes" if code.get("dirty") else "")


def job_seconds(results: dict) -> float:
    """A job's time over all its processes (`job_time_s`); jobs written before disent recorded it have
    only their last process's `wall_time_s`."""
    return float(results.get("job_time_s") or results.get("wall_time_s") or 0.0)


def experiment_status(name: str, runs: Runs, plans: dict[str, Plan]) -> list[dict]:
    """Per experiment of an item: its overrides, its plan, and what of it is done (jobs, steps, seeds, time, code)."""
    status = []
    for experiment in runs.experiments:
        done = runs.jobs(experiment)
        status.append(
            {
                "experiment": experiment,
                "own": item_overrides(name, experiment, runs.preset),
                "plan": plans[experiment],
                "done": len(done),
                "records": sum(not job.trained for job in done),
                "steps": sorted({job.results.get("max_steps") for job in done}),
                "batch": sorted({job.results.get("batch_size") for job in done}),
                "seeds": sorted({job.seed for job in done}),
                "seconds": sum(job_seconds(job.results) for job in done),
                "partial_time": any("job_time_s" not in job.results for job in done),
                "commits": sorted({_commit(job.results) for job in done}),
            }
        )
    return status


def _provenance(name: str, spec: dict, runs: Runs, preset: str, status: list[dict]) -> str:
    """The section's head: what it reproduces, the command, and what the runs were (length, seeds, time, code)."""
    overrides = " ".join(shlex.quote(o) for o in preset_overrides(preset)) or "(none)"
    lines = [
        f'<a id="{name}"></a>',
        "",
        f"## {spec['number']}. {spec['title']} (`{name}`)",
        "",
        f"Paper: {spec['paper']}.",
        "",
        f"Reproduce: `disent-lecture run {name} --preset {preset}`. It runs, for each experiment below, "
        f"`disent-train -m experiment=lecture/<experiment> hydra.sweep.dir={runs.out}/<experiment>/{preset}` "
        f"with the preset's overrides `{overrides}` and the item's own (in the table); each experiment's grid "
        "is its file's `hydra.sweeper.params`.",
        "",
    ]
    rows = [
        [
            f"`lecture/{s['experiment']}`",
            " ".join(f"`{o}`" for o in s["own"]) or "—",
            f"{s['done']} / {s['plan'].jobs}",
            ", ".join(f"{steps:,}" for steps in s["steps"]),
            ", ".join(map(str, s["batch"])),
            _span(s["seeds"]),
            "≥ " * s["partial_time"] + hours(s["seconds"]),
            ", ".join(s["commits"]),
        ]
        for s in status
    ]
    lines.append(
        table(
            [
                "experiment",
                "its overrides",
                "jobs completed / planned",
                "steps",
                "batch",
                "seeds",
                "job time (sum)",
                "trained at commit",
            ],
            rows,
        )
    )
    kept = sum(s["records"] for s in status)
    if kept:
        lines.append(
            f"{kept} of the completed jobs are read from their records (`{RECORDS}/` beside this page: "
            "results, config and measurements of jobs trained in an earlier session or on another "
            "machine); the others from their job directories.\n"
        )
    report = code_version()
    lines.append(
        f"Report made at commit {cited_commit(report)}, preset `{preset}`. Jobs run two at "
        "a time on the `cpu` preset, so the item's wall time is about half the job time (≥: some jobs, "
        "trained before disent recorded `job_time_s`, count only their last process's time).\n"
    )
    return "\n".join(lines)


def summary(name: str, preset: str, status: list[dict], section: Section) -> dict:
    """An item's line of the index tables: docs/lecture/<item>/summary.json."""
    return {
        "item": name,
        "preset": preset,
        "command": f"disent-lecture run {name} --preset {preset}",
        "steps": sorted({s["plan"].steps for s in status}),
        "seeds": sorted({seed for s in status for seed in s["plan"].seeds}),
        "jobs_completed": sum(s["done"] for s in status),
        "jobs_planned": sum(s["plan"].jobs for s in status),
        "job_seconds": sum(s["seconds"] for s in status),
        "job_time_partial": any(s["partial_time"] for s in status),
        "commits": sorted({commit for s in status for commit in s["commits"]}),
        "measured": section.measured,
        "paper": section.paper,
        "claim": section.claim,
    }


def index_table(docs: Path, preset: str) -> str:
    """The items in the lecture's order, each with its command, training length, seeds, job time and
    headline beside the paper's (from docs/<item>/summary.json; an item never reported has its plan
    under `preset`)."""
    rows = []
    for name in item_names():
        spec = item_spec(name)
        path = docs / name / "summary.json"
        if not path.is_file():
            plans = [
                plan(
                    experiment,
                    [*preset_overrides(preset), *item_overrides(name, experiment, preset)],
                )
                for experiment in spec["experiments"]
            ]
            rows.append(
                [
                    spec["number"],
                    f"`{name}`",
                    f"`disent-lecture run {name} --preset {preset}`",
                    " / ".join(f"{steps:,}" for steps in sorted({p.steps for p in plans})),
                    _span(sorted({seed for p in plans for seed in p.seeds})),
                    f"0 / {sum(p.jobs for p in plans)}",
                    "",
                    "not reported yet",
                    "",
                    "",
                ]
            )
            continue
        line = json.loads(path.read_text())
        rows.append(
            [
                spec["number"],
                f"[`{name}`](docs/lecture/README.md#{name})",
                f"`{line['command']}`",
                " / ".join(f"{steps:,}" for steps in line["steps"]),
                _span(line["seeds"]),
                f"{line['jobs_completed']} / {line['jobs_planned']}",
                "≥ " * line.get("job_time_partial", False) + hours(line["job_seconds"]),
                line["measured"],
                line["paper"],
                line["claim"],
            ]
        )
    return table(
        [
            "#",
            "item",
            "command",
            "training steps",
            "seeds",
            "jobs done",
            "job time (sum)",
            "disent",
            "paper",
            "claim",
        ],
        rows,
    )


def report(name: str, preset: str, out: Path, docs: Path, readme: Path | None = None) -> Path:
    """Write an item's figures and summary into docs/<item>/, its section and the index into
    docs/README.md, and the index into `readme` (between its lecture markers, where it has them);
    returns the page."""
    spec = item_spec(name)
    commands = sweep_commands(name, preset, out, [])
    settings = {
        **spec.get("analysis", {}),
        **(spec.get("analysis_tiny", {}) if preset == "tiny" else {}),
    }
    plans = {
        experiment: plan(
            experiment, [*preset_overrides(preset), *item_overrides(name, experiment, preset)]
        )
        for experiment in spec["experiments"]
    }
    runs = Runs(
        out,
        preset,
        list(spec["experiments"]),
        commands,
        settings,
        records=docs / RECORDS,
        plans=plans,
    )
    figures = docs / name
    figures.mkdir(parents=True, exist_ok=True)
    section = analysis(name).analyze(runs, figures)
    runs.keep_records()  # after the analysis: the records keep what it measured
    status = experiment_status(name, runs, plans)
    write_atomic(
        figures / "summary.json",
        json.dumps(summary(name, preset, status, section), indent=1) + "\n",
    )
    page = docs / "README.md"
    update_section(
        page, name, SECTIONS, _provenance(name, spec, runs, preset, status) + "\n" + section.text
    )
    index = index_table(docs, preset)
    update_section(
        page,
        "index",
        SECTIONS,
        "## The items\n\n" + index.replace("](docs/lecture/README.md#", "](#"),
    )
    if readme is not None:
        replace_marked(readme, "index", index)
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="disent-lecture", description="Reproduce the lecture's figures and tables."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the items")
    for command, help_text in (
        ("run", "train an item's sweeps (resuming), then write its section"),
        ("report", "write an item's section from the jobs on disk"),
    ):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("item", help="an item name, or all")
        sub.add_argument(
            "--preset",
            default="cpu",
            choices=PRESETS,
            help="cpu (default), tiny (smoke test), full",
        )
        sub.add_argument(
            "--out", type=Path, default=Path("outputs/lecture"), help="where the jobs go"
        )
        sub.add_argument(
            "--docs",
            type=Path,
            default=DEFAULT_DOCS,
            help="the page, its figures and the jobs' records",
        )
        sub.add_argument(
            "--readme",
            type=Path,
            default=None,
            help="whose items table (between its lecture:index markers) is rewritten too (default: "
            "README.md when --docs is docs/lecture, none for another --docs)",
        )
        if command == "run":
            sub.add_argument("--dry-run", action="store_true", help="print the commands only")
            sub.add_argument(
                "--no-report",
                action="store_true",
                help="train only; `report` writes the section later",
            )
            sub.add_argument(
                "overrides", nargs="*", help="extra disent-train overrides for every job"
            )
    # overrides may follow the options, as on disent-train's line
    args, rest = parser.parse_known_args(argv)
    if rest and (args.command != "run" or any(part.startswith("-") for part in rest)):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        args.overrides += rest
    if args.command == "list":
        for name in item_names():
            spec = item_spec(name)
            print(f"{spec['number']:>2}. {name:18s} {spec['title']}")
        return
    if args.command != "list" and args.readme is None and args.docs == DEFAULT_DOCS:
        # the project's page links to docs/lecture: its index follows that page's
        args.readme = Path("README.md")
    names = item_names() if args.item == "all" else [args.item]
    try:
        for name in names:
            item_spec(name)
    except ValueError as error:
        parser.error(str(error))
    failures = 0
    for name in names:
        if args.command == "run":
            failures += run(name, args.preset, args.out, args.overrides, args.dry_run, args.docs)
            if args.dry_run or args.no_report:
                continue
        print(f"wrote {report(name, args.preset, args.out, args.docs, args.readme)} ({name})")
    if failures:
        print(
            f"disent-lecture: {failures} sweep(s) had failed jobs; their results.json says why",
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
