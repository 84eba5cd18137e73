"""`disent-train`: the Hydra entry point that trains one model (disent/run.py) and writes its job directory."""

import sys

import hydra
from omegaconf import DictConfig

from disent.checkpoints import CheckpointError
from disent.config import CONF_DIR
from disent.data import DataFileError
from disent.job import JobInterrupted, handle_signals
from disent.run import hydra_job_info, train
from disent.schema import ConfigError

# errors whose message says what to change: a single run prints it alone, without a traceback
USER_ERRORS = (ConfigError, CheckpointError, DataFileError)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _main(cfg: DictConfig) -> None:
    job_dir, sweep_name = hydra_job_info()
    try:
        train(cfg, job_dir, sweep_name)
    except USER_ERRORS as error:
        if sweep_name is not None:
            raise  # a multirun records the failure and goes on with its other jobs
        print(f"disent-train: {error}", file=sys.stderr)
        raise SystemExit(2) from None  # one message, no traceback: what to change is in it


def main() -> None:
    """`disent-train`: Hydra's entry point, with disent's signal handlers around every job
    (disent.job): a signal ends the process with 128 + its number, after the running job is recorded
    as interrupted."""
    with handle_signals():
        try:
            _main()
        except JobInterrupted as error:
            print(
                f"disent-train: {error}; results.json of the job says so. Run the same command again "
                f"(with the same hydra.run.dir or hydra.sweep.dir) to continue (resume=auto).",
                file=sys.stderr,
            )
            raise SystemExit(error.exit_code) from None


if __name__ == "__main__":
    main()
