"""Writing run outputs safely: every file disent writes goes through `write_atomic`.

A crash, a signal or a full disk never leaves a half-written file for the analysis to read, and a
planted symlink never redirects a write: the data go to a fresh temporary file beside the target
(`tempfile.mkstemp`: a random name, opened with O_CREAT | O_EXCL | O_NOFOLLOW), are fsynced, and the
file is renamed over the target (a rename replaces a symlink there, it never writes through it).
When anything fails, the temporary file is removed and the target is left as it was.
"""

import errno
import functools
import io
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# new files get the usual permissions (0o666 less the umask), not mkstemp's owner-only 0o600
_UMASK = os.umask(0)
os.umask(_UMASK)


def _jsonable(value: Any) -> Any:
    """NaN and infinities become strings, so the file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_atomic(path: str | Path, data: bytes | str | Callable[[IO[bytes]], Any]) -> Path:
    """Write `data` (bytes, text as UTF-8, or a function that writes into a binary file) to `path`
    atomically.

    The parent directory is created when missing. Raises what the write raised (OSError for a full
    disk or an unwritable directory), after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, "wb") as file:
            if callable(data):
                data(file)
            else:
                file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:  # a signal too: never leave the temporary file behind
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _sync_directory(path.parent)
    return path


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every file system lets a directory be opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_json_atomic(path: str | Path, data: dict) -> Path:
    """`data` as strict JSON (NaN as "nan"), written atomically to `path`."""
    return write_atomic(path, json.dumps(_jsonable(data), indent=2, sort_keys=False))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """`data` written atomically to `path`."""
    return write_atomic(path, data)


def save_figure_atomic(figure, path: str | Path, **savefig_options: Any) -> Path:
    """A matplotlib figure, rendered in memory, then written atomically (its format from the suffix)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **savefig_options)
    return write_atomic(path, buffer.getvalue())


@functools.cache
def code_version() -> dict:
    """What code wrote a run: disent's version and, from a git checkout of disent, its commit and
    whether it had uncommitted changes (`git_version`). results.json records it; the lecture pages
    cite it."""
    from disent import __version__

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists() or not (root / "pyproject.toml").is_file():
        return {"version": __version__}  # an installed wheel: the version is all there is
    return {"version": __version__, **git_version(root)}


def git_version(root: Path) -> dict:
    """The checkout's commit and whether its working tree has uncommitted changes to what runs
    (`dirty`: code and configs; changes under docs/ and to markdown files, which the lecture's
    reports themselves write, do not count); {} where git cannot tell."""
    what_runs = [".", ":(exclude)docs", ":(exclude)*.md"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--"]
            + what_runs,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if commit.returncode != 0:
        return {}
    return {"commit": commit.stdout.strip(), "dirty": bool(changes.stdout.strip())}


def os_reason(error: OSError) -> str:
    """An OSError as a short reason: 'Permission denied: /x/y' (the path it concerns, where it has one)."""
    reason = error.strerror or str(error)
    if reason == "File exists" or error.errno == errno.EEXIST:
        reason = "a file stands where a directory goes"
    return f"{reason}: {error.filename}" if error.filename else reason


def probe_writable(directory: str | Path) -> None:
    """Raise OSError unless a file can be created (and removed) in `directory`."""
    descriptor, name = tempfile.mkstemp(prefix=".write-test.", dir=directory)
    os.close(descriptor)
    os.unlink(name)
