"""What keeps a job directory sound: one writer at a time, a directory that can be written, and signals
that leave a job `interrupted` (never `completed`) with an exit code a scheduler reads as failure.

The signal contract (disent-train, single runs, multiruns and stacks alike):

- SIGINT (Ctrl-C), SIGTERM (SLURM's and Kubernetes' pre-emption), SIGHUP and SIGUSR1 interrupt the job.
  During training the current step finishes and a checkpoint of that step is written first (so nothing
  trained is lost); in any other phase (building, final checkpoint, figures, metrics) the job stops at once.
- `results.json` then says `"status": "interrupted"` with `"interrupted": {"signal", "phase", "step"}`,
  and the process exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
- A second signal while the first is being handled stops the wait for the step's end. The same signal twice
  within a second is one signal delivered twice (to a process group, and forwarded by a parent): it counts once.
- Multiruns whose jobs run in worker processes (hydra/launcher=joblib): the parent forwards the signal to each
  worker that holds a job of its sweep (a held `.lock`), waits until those jobs have written their results,
  then exits with the same code; the sweep's other jobs never start.
- Running the same command again (`resume=auto`, the same job or sweep directory) continues the job: from
  the checkpoint of the interrupted step, or, when training had finished, with the figures and metrics.
- SIGKILL cannot be handled: `results.json` still says `running`, and `resume=auto` continues from the
  last periodic checkpoint. Signals that another framework already handles (submitit's) are left to it.

The lock: a job holds `<job dir>/.lock` (`fcntl.flock`, exclusive) from before it writes anything
until its results are final; a second process that would write the same directory is refused with a
message naming the process that holds it, and writes nothing. The kernel drops the lock when its
holder dies.
"""

import errno
import fcntl
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.experimental.callback import Callback

from disent.results import os_reason, probe_writable
from disent.schema import ConfigError

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)
DUPLICATE_WINDOW_S = 1.0  # the same signal again within this is a second delivery of one signal
# how long a multirun's parent waits for its workers' interrupted jobs to be written
WORKER_WAIT_S = 600.0


class JobInterrupted(BaseException):
    """A signal stopped the job. A BaseException, like KeyboardInterrupt: `except Exception` must not
    swallow it, and Lightning must not treat it as the Ctrl-C it handles itself."""

    def __init__(self, signum: int, phase: str):
        self.signum = signum
        self.phase = phase
        super().__init__(f"interrupted by {signal.Signals(signum).name} during {phase}")

    def __reduce__(self):  # a worker process sends it to its parent pickled (hydra/launcher=joblib)
        return type(self), (self.signum, self.phase)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class JobDirError(ConfigError):
    """A job directory that cannot be written, or that another process is writing."""


# --- signals --------------------------------------------------------------------------------------
class _Signals:
    """The process's signal state: which phase the running job is in, and a signal waiting for a step's end."""

    def __init__(self) -> None:
        self.phase = "start-up"
        # a signal received during training, acted on at the step's end
        self.pending: int | None = None
        self.installed = False  # whether handle_signals() has installed the handlers
        self.last: tuple[int, float] = (0, -DUPLICATE_WINDOW_S)  # the last signal handled, and when
        # the sweep of the multirun this process runs (CheckOutputDir sets it)
        self.sweep_dir: Path | None = None

    def handler(self, signum: int, frame) -> None:
        now = time.monotonic()
        if self.last[0] == signum and now - self.last[1] < DUPLICATE_WINDOW_S:
            return  # one Ctrl-C (or scancel) reached the process group and came again from the parent
        self.last = (signum, now)
        if self.phase == "start-up" and forward_to_workers(signum):
            # every worker's job is recorded as interrupted
            raise JobInterrupted(signum, "multirun")
        if self.phase == "training" and self.pending is None:
            self.pending = signum  # finish the step, checkpoint it, then stop (check_pending)
            return
        if self.phase == "closing":
            self.pending = self.pending or signum  # the results are being written: let them be
            return
        raise JobInterrupted(signum, self.phase)


SIGNALS = _Signals()


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install disent's handlers for INTERRUPT_SIGNALS while the block runs, then restore the previous
    ones. Nested calls, and calls outside the main thread (where Python cannot install handlers),
    change nothing; a signal that another framework already handles (submitit's) keeps its handler.
    """
    if SIGNALS.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in INTERRUPT_SIGNALS:
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, signal.default_int_handler, None):
            previous[signum] = current
            signal.signal(signum, SIGNALS.handler)
    SIGNALS.installed = True
    try:
        yield
    finally:
        SIGNALS.installed = False
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def reclaim_signals() -> None:
    """Put disent's handler back on the signals Lightning's Trainer took over while a job is training.

    Lightning chains its own SIGTERM handler in front of disent's; it then raises SIGTERMException
    (an exit with status 0) at the next point it checks, which can fall after disent's step-end
    checkpoint: the job would stop without that step saved and exit 0. disent's handler alone
    finishes the step, saves it, and exits 143. Lightning's teardown restores the handlers it found,
    which are disent's."""
    if not SIGNALS.installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in INTERRUPT_SIGNALS:
        # Lightning's _HandlersCompose
        chain = getattr(signal.getsignal(signum), "signal_handlers", [])
        if SIGNALS.handler in chain:
            signal.signal(signum, SIGNALS.handler)


def set_phase(name: str) -> None:
    """Say what the job is doing now ("building", "training", "final checkpoint", "figures", "metrics",
    ...): the interruption record names it, and during "training" a signal waits for the step's end.
    """
    SIGNALS.phase = name


def check_pending() -> None:
    """Raise JobInterrupted for a signal that waited for the end of a training step (call it once that
    step's checkpoint is written)."""
    if SIGNALS.pending is not None:
        signum = SIGNALS.pending
        SIGNALS.pending = None
        raise JobInterrupted(signum, "training")


def pending_signal() -> int | None:
    return SIGNALS.pending


def reset_signals() -> None:
    """A new job starts: nothing pending, nothing running."""
    SIGNALS.phase = "start-up"
    SIGNALS.pending = None
    SIGNALS.last = (0, -DUPLICATE_WINDOW_S)


def interruption(error: BaseException) -> dict | None:
    """results.json's `interrupted` record for an error that is an interruption, else None: disent's
    own JobInterrupted, a KeyboardInterrupt (Ctrl-C where disent's handler is not installed) or
    Lightning's SIGTERMException (SIGTERM where it is not)."""
    if isinstance(error, JobInterrupted):
        return {"signal": signal.Signals(error.signum).name, "phase": error.phase}
    if isinstance(error, KeyboardInterrupt):
        return {"signal": "SIGINT", "phase": SIGNALS.phase}
    if type(error).__name__ == "SIGTERMException":
        return {"signal": "SIGTERM", "phase": SIGNALS.phase}
    return None


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            # the field after the state letter
            return int(stat_file.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descends_from_this_process(pid: int) -> bool:
    """Whether `pid` is a child (or grandchild ...) of this process, read from /proc (False without it)."""
    for _ in range(8):
        parent = _parent_of(pid)
        if parent is None or parent <= 1:
            return False
        if parent == os.getpid():
            return True
        pid = parent
    return False


def _held_job_locks(root: Path) -> dict[Path, int]:
    """{lock: the pid holding it} of the jobs under `root` that a process (other than this one) is running."""
    held = {}
    for path in root.rglob(".lock"):
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(descriptor, fcntl.LOCK_UN)  # free: no job runs there
        except BlockingIOError:
            text = os.pread(descriptor, 64, 0).decode(errors="replace").strip()
            if text.isdigit() and int(text) != os.getpid():
                held[path] = int(text)
        finally:
            os.close(descriptor)
    return held


def forward_to_workers(signum: int) -> bool:
    """In a multirun's parent whose jobs run in worker processes: send `signum` to each worker running
    a job of the sweep, and wait until they have all released their job's lock (their results are
    written). False, with nothing sent, where no worker of this process runs a job (a single run, a
    basic-launcher multirun)."""
    sweep = SIGNALS.sweep_dir
    if sweep is None or not sweep.is_dir():
        return False
    forwarded: set[Path] = set()
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline:
        running = {
            path: pid
            for path, pid in _held_job_locks(sweep).items()
            if _descends_from_this_process(pid)
        }
        for path, pid in running.items():
            if path not in forwarded:  # a job that was running, or one a worker started since
                forwarded.add(path)
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
        if not running:
            break
        time.sleep(0.1)
    return bool(forwarded)


# --- the job directory ----------------------------------------------------------------------------
def check_writable(job_dir: str | Path, what: str = "job directory") -> Path:
    """Make `job_dir` (and its parents) if needed and check that disent can write in it and its
    `checkpoints/`; a JobDirError naming the path and the reason otherwise, before anything is
    trained."""
    job_dir = Path(job_dir)
    hint = (
        "choose another directory (hydra.run.dir=... for a single run, hydra.sweep.dir=... for a multirun), "
        "or make this one writable"
    )
    if job_dir.exists() and not job_dir.is_dir():
        raise JobDirError(
            f"cannot write the {what} {job_dir}: a file stands where the directory goes; {hint}"
        )
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise JobDirError(
            f"cannot create the {what} {job_dir} ({os_reason(error)}); {hint}"
        ) from None
    for directory in (job_dir, job_dir / "checkpoints"):
        if not directory.exists():
            continue
        if not directory.is_dir():
            raise JobDirError(f"cannot write {directory}: it is a file, not a directory; {hint}")
        try:
            probe_writable(directory)
        except OSError as error:
            raise JobDirError(f"cannot write in {directory} ({os_reason(error)}); {hint}") from None
    return job_dir


_LOCKS: dict[str, list] = {}  # resolved job dir -> [file descriptor, holders in this process]


@contextmanager
def job_lock(job_dir: str | Path) -> Iterator[None]:
    """Hold `<job_dir>/.lock` exclusively while the block runs (re-entrant within a process); a
    JobDirError, with nothing written, when another process holds it."""
    key = str(Path(job_dir).resolve())
    if key in _LOCKS:
        _LOCKS[key][1] += 1
        try:
            yield
        finally:
            _LOCKS[key][1] -= 1
        return
    path = Path(job_dir) / ".lock"
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        reason = "it is a symlink" if error.errno == errno.ELOOP else error.strerror or str(error)
        raise JobDirError(f"cannot lock the job directory {job_dir} ({path}: {reason})") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise JobDirError(
                f"cannot lock the job directory {job_dir}: {path} is not a regular file"
            )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "unknown"
            raise JobDirError(
                f"another disent process (pid {holder}) is writing the job directory {job_dir}: "
                f"wait for it to finish, or choose another directory for this run"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(descriptor)
        raise
    _LOCKS[key] = [descriptor, 1]
    try:
        yield
    finally:
        del _LOCKS[key]
        # releases the lock; the file stays, so that no two processes lock two files
        os.close(descriptor)


# --- the Hydra callback
# -----------------------------------------------------------------------------
class CheckOutputDir(Callback):
    """A Hydra callback (conf/train.yaml, `hydra.callbacks`): the run or sweep directory is checked
    before Hydra writes into it, so an unwritable one gives one message and exit code 2, not Hydra's
    traceback."""

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config.hydra.run.dir, "run directory")

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config.hydra.sweep.dir, "sweep directory")
        # where a signal looks for the jobs of worker processes
        SIGNALS.sweep_dir = Path(config.hydra.sweep.dir)

    def on_multirun_end(self, config, **kwargs) -> None:
        SIGNALS.sweep_dir = None

    @staticmethod
    def _check(directory: str, what: str) -> None:
        import sys

        try:
            check_writable(directory, what)
        except JobDirError as error:
            print(f"disent-train: {error}", file=sys.stderr)
            raise SystemExit(2) from None
