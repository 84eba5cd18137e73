"""`hydra/launcher=stacked`: a multirun's jobs that differ only in seed and loss weights train
together, `stack_size` at a time, as one stacked model (disent.stack); the other jobs run one by
one, as with Hydra's basic launcher. Every job still gets its own directory, results.json,
checkpoint and figures.

    disent-train -m hydra/launcher=stacked hydra.launcher.stack_size=8 model.beta=1,2,4,8 seed=0,1
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.disent_stacked_launcher.stacked_launcher.StackedLauncher"
    stack_size: int = 8  # jobs trained as one model at most; 1 runs every job alone
    # how a step runs the members' nets: "vmap" (one vectorised call), "loop" (one member after
    # another), or "auto": vmap on a GPU, loop on a CPU, where vmap's grouped convolutions measured
    # 2x slower
    member_calls: str = "auto"


ConfigStore.instance().store(
    group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="disent"
)


class StackedLauncher(Launcher):
    def __init__(self, stack_size: int = 8, member_calls: str = "auto") -> None:
        from disent.stack import vectorize

        if stack_size < 1:
            raise ValueError(f"hydra.launcher.stack_size = {stack_size}: must be an integer >= 1")
        vectorize(member_calls)  # refuses a bad value before any job starts
        self.stack_size = stack_size
        self.member_calls = member_calls
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def _job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = idx
            config.hydra.job.num = idx
        return config

    def _run(self, config: DictConfig, task_function: TaskFunction) -> JobReturn:
        """Hydra's own job set-up (job directory, .hydra/ files, logging) around `task_function`."""
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from disent.run import hydra_job_info
        from disent.stack import stack_key, train_stack

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            configs.append(self._job_config(overrides, idx))
        groups: dict[str, list[int]] = {}
        singles: list[int] = []
        for i, config in enumerate(configs):
            task_config = config.copy()
            with open_dict(task_config):
                del task_config["hydra"]
            key = stack_key(task_config) if self.stack_size > 1 else None
            (groups.setdefault(key, []) if key is not None else singles).append(i)
        stacks = [
            members[j : j + self.stack_size]
            for members in groups.values()
            for j in range(0, len(members), self.stack_size)
        ]
        log.info(
            f"Launching {len(configs)} jobs: {sum(len(s) for s in stacks)} in {len(stacks)} stack(s) "
            f"of at most {self.stack_size}, {len(singles)} alone"
        )
        returns: dict[int, JobReturn] = {}
        for i in singles:
            returns[i] = self._run(configs[i], self.task_function)
        for stack in stacks:
            prepared: list = []  # Hydra makes each job's directory; the stack then trains them all at once
            stack_returns = [
                self._run(
                    configs[i], lambda cfg, into=prepared: into.append((cfg, *hydra_job_info()))
                )
                for i in stack
            ]
            for i, ret, outcome in zip(
                stack, stack_returns, train_stack(prepared, self.member_calls), strict=True
            ):
                ret.return_value = outcome
                ret.status = (
                    JobStatus.FAILED if isinstance(outcome, BaseException) else JobStatus.COMPLETED
                )
                returns[i] = ret
        return [returns[i] for i in range(len(configs))]
