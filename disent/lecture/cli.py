"""`disent-lecture`: train and report the lecture's items (see disent/lecture/__init__.py)."""

import argparse
import shlex
import sys
from pathlib import Path

from disent.lecture import ITEMS, PRESETS, analysis, item_names, item_spec, preset_overrides, sweep_dir
from disent.lecture.page import hours, table, update_section
from disent.lecture.runs import Runs
from disent.results import code_version


def item_overrides(name: str, experiment: str, preset: str) -> list[str]:
    """The overrides an item gives one of its experiments under a preset (beyond the preset's own)."""
    presets = item_spec(name)["experiments"][experiment]
    if isinstance(presets, str):  # the experiment is another item's: its overrides, its jobs
        presets = item_spec(presets)["experiments"][experiment]
    return list((presets or {}).get(preset, []))


def sweep_commands(name: str, preset: str, out: Path, extra: list[str]) -> dict[str, list[str]]:
    """{experiment: the `disent-train -m` command that runs (or resumes) its sweep} for an item."""
    return {experiment: [sys.executable, "-m", "disent.train", "-m", f"experiment=lecture/{experiment}",
                         f"hydra.sweep.dir={sweep_dir(out, experiment, preset)}", *preset_overrides(preset),
                         *item_overrides(name, experiment, preset), *extra]
            for experiment in item_spec(name)["experiments"]}


def planned_jobs(experiment: str, overrides: list[str]) -> int:
    """How many jobs an experiment's sweep has: its file's `hydra.sweeper.params`, with the command line's
    `key=a,b,...` or `key=range(a,b)` values in place of a key's grid (as Hydra's basic sweeper does)."""
    from hydra import compose, initialize_config_dir

    from disent.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        params = dict(compose("train", overrides=[f"experiment=lecture/{experiment}"],
                              return_hydra_config=True).hydra.sweeper.params or {})
    params |= {key: value for key, _, value in (o.partition("=") for o in overrides)
               if key in params or "," in value or value.startswith("range(")}

    def count(value) -> int:
        text = str(value)
        if text.startswith("range(") and text.endswith(")"):
            return len(range(*(int(part) for part in text[6:-1].split(","))))
        return len(text.split(","))

    total = 1
    for value in params.values():
        total *= count(value)
    return total


def shown(command: list[str]) -> str:
    """A command as a user types it: `disent-train ...`."""
    return " ".join(["disent-train", *(shlex.quote(part) for part in command[3:])])


def run(name: str, preset: str, out: Path, extra: list[str], dry_run: bool = False) -> int:
    """Run every sweep of an item (finished jobs are skipped, interrupted ones resume); how many failed."""
    failures = 0
    for command in sweep_commands(name, preset, out, extra).values():
        print(shown(command), flush=True)
        if not dry_run:
            failures += run_sweep(command[3:]) != 0  # a failed job must not stop the other sweeps
    return failures


def run_sweep(arguments: list[str]) -> int:
    """`disent-train <arguments>` in this process (one import of torch and Lightning for all of an item's sweeps);
    its exit code. A signal stops the whole item, with the code disent-train gives it (128 + the signal)."""
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


def _provenance(name: str, spec: dict, runs: Runs, preset: str) -> str:
    """The section's head: what it reproduces, the command, and what the runs were (length, seeds, time, code)."""
    overrides = " ".join(shlex.quote(o) for o in preset_overrides(preset)) or "(none)"
    lines = [f"## {spec['number']}. {spec['title']} (`{name}`)", "", f"Paper: {spec['paper']}.", "",
             f"Reproduce: `disent-lecture run {name} --preset {preset}`. It runs, for each experiment below, "
             f"`disent-train -m experiment=lecture/<experiment> hydra.sweep.dir={runs.out}/<experiment>/{preset}` "
             f"with the preset's overrides `{overrides}` and the item's own (in the table); each experiment's grid "
             "is its file's `hydra.sweeper.params`.", ""]
    rows = []
    for experiment in runs.experiments:
        own = item_overrides(name, experiment, preset)
        jobs = runs.jobs(experiment, completed=False)
        done = [job for job in jobs if job.status == "completed"]
        steps = sorted({job.results.get("max_steps") for job in done})
        seeds = sorted({job.seed for job in done})
        batch = sorted({job.results.get("batch_size") for job in done})
        seconds = sum(job.results.get("wall_time_s") or 0.0 for job in done)
        commits = sorted({(job.results.get("code") or {}).get("commit", "unrecorded")[:10]
                          + ("+changes" if (job.results.get("code") or {}).get("dirty") else "") for job in done})
        planned = planned_jobs(experiment, [*preset_overrides(preset), *own])
        rows.append([f"`lecture/{experiment}`", " ".join(f"`{o}`" for o in own) or "—", f"{len(done)} / {planned}",
                     ", ".join(f"{s:,}" for s in steps),
                     ", ".join(map(str, batch)), ", ".join(map(str, seeds)), hours(seconds), ", ".join(commits)])
    lines.append(table(["experiment", "its overrides", "jobs completed / planned", "steps", "batch", "seeds",
                        "job time (sum)", "trained at commit"], rows))
    report = code_version()
    lines.append(f"Report made at commit {report.get('commit', report['version'])[:10]}"
                 f"{' (with uncommitted changes)' if report.get('dirty') else ''}, preset `{preset}`. Jobs run two at "
                 f"a time on the `cpu` preset, so the item's wall time is about half the job time.\n")
    return "\n".join(lines)


def report(name: str, preset: str, out: Path, docs: Path) -> Path:
    """Write an item's figures into docs/<item>/ and its section into docs/README.md; returns the page."""
    spec = item_spec(name)
    commands = sweep_commands(name, preset, out, [])
    settings = {**spec.get("analysis", {}), **(spec.get("analysis_tiny", {}) if preset == "tiny" else {})}
    runs = Runs(out, preset, list(spec["experiments"]), commands, settings)
    figures = docs / name
    figures.mkdir(parents=True, exist_ok=True)
    body = analysis(name).analyze(runs, figures)
    return update_section(docs / "README.md", name, ITEMS, _provenance(name, spec, runs, preset) + "\n" + body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="disent-lecture", description="Reproduce the lecture's figures and tables.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the items")
    for command, help_text in (("run", "train an item's sweeps (resuming), then write its section"),
                               ("report", "write an item's section from the jobs on disk")):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("item", help="an item name, or all")
        sub.add_argument("--preset", default="cpu", choices=PRESETS, help="cpu (default), tiny (smoke test), full")
        sub.add_argument("--out", type=Path, default=Path("outputs/lecture"), help="where the jobs go")
        sub.add_argument("--docs", type=Path, default=Path("docs/lecture"), help="the page and its figures")
        if command == "run":
            sub.add_argument("--dry-run", action="store_true", help="print the commands only")
            sub.add_argument("--no-report", action="store_true", help="train only; `report` writes the section later")
            sub.add_argument("overrides", nargs="*", help="extra disent-train overrides for every job")
    args, rest = parser.parse_known_args(argv)  # overrides may follow the options, as on disent-train's line
    if rest and (args.command != "run" or any(part.startswith("-") for part in rest)):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        args.overrides += rest
    if args.command == "list":
        for name in item_names():
            spec = item_spec(name)
            print(f"{spec['number']:>2}. {name:18s} {spec['title']}")
        return
    names = item_names() if args.item == "all" else [args.item]
    try:
        for name in names:
            item_spec(name)
    except ValueError as error:
        parser.error(str(error))
    failures = 0
    for name in names:
        if args.command == "run":
            failures += run(name, args.preset, args.out, args.overrides, args.dry_run)
            if args.dry_run or args.no_report:
                continue
        print(f"wrote {report(name, args.preset, args.out, args.docs)} ({name})")
    if failures:
        print(f"disent-lecture: {failures} sweep(s) had failed jobs; their results.json says why", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
