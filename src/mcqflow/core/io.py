"""Atomic file writes: a reader (or a crash) never sees half a file.

Content goes to a temporary file in the destination's folder, is flushed to disk, then renamed over the
destination (`os.replace` is atomic on POSIX and Windows), so an output is either the old one or the
whole new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mcqflow.core.errors import UserError


@contextlib.contextmanager
def atomic_open(
    path: str | Path, newline: str | None = None, publish_empty: bool = True
) -> Iterator[IO[str]]:
    """Open `path` for writing text (UTF-8); it appears under its name only when the block succeeds (and,
    without `publish_empty`, only when something was written: an existing file is then left as it is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            empty = f.tell() == 0
        if empty and not publish_empty:
            os.unlink(tmp)
            return
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def user_cache_dir() -> Path:
    """mcqflow's folder in the user's cache, outside every repository (as the Hugging Face cache is):
    `$MCQFLOW_CACHE`, else `$XDG_CACHE_HOME/mcqflow`, else `~/.cache/mcqflow`."""
    if os.environ.get("MCQFLOW_CACHE"):
        return Path(os.environ["MCQFLOW_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mcqflow"


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def check_distinct(**paths: str | Path | None) -> None:
    """One line when two of the named paths (flag -> path) are the same file: an output would overwrite an
    input, or two outputs each other. Checked before any work."""
    seen: dict[Path, str] = {}
    for flag, p in paths.items():
        if p is None:
            continue
        key = Path(p).expanduser().resolve()
        if key in seen:
            raise UserError(f"{seen[key]} and {flag} are the same file ({p}): give each its own path")
        seen[key] = flag


def check_writable(**paths: str | Path | None) -> None:
    """Before any work: one line for an output (flag -> path) whose folder cannot be made or written."""
    for flag, p in paths.items():
        if p is None:
            continue
        folder = Path(p).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{flag} {p}: cannot make its folder ({e.strerror or e})") from None
        if Path(p).is_dir():
            raise UserError(f"{flag} {p}: is a folder; give a file name")
        if not os.access(folder, os.W_OK):
            raise UserError(f"{flag} {p}: its folder {folder} is not writable")


_HELD: list[int] = []  # lock descriptors, held until the process ends (the kernel releases them then)


def lock_dir() -> Path:
    """Where claim's locks live: <tmp>/mcqflow-locks-<uid>, the user's own (0700)."""
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"mcqflow-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != os.getuid():  # another user's folder in a shared /tmp
        raise UserError(f"{folder}: not this user's lock folder; remove it or set TMPDIR")
    return folder


def claim(**paths: str | Path | None) -> None:
    """Before any work: take the named outputs (flag -> path) for this process, so two runs never write
    one file at once (their journals would interleave, and the last rename would win). One line, naming the
    other run's pid, when another mcqflow process holds one; the claim lasts until this process ends.

    The locks are `flock`s on files in one folder per user under the system's temporary folder (not the
    user's cache: two runs with different MCQFLOW_CACHE must still see each other), named by a hash of each
    output's resolved path: nothing is left beside the outputs, and a lock file is never removed, so there
    is no window where two processes lock different files for one output. Where `fcntl` is missing
    (Windows), nothing is claimed."""
    try:
        import fcntl
    except ImportError:
        return
    import hashlib

    folder = lock_dir()
    for flag, p in paths.items():
        if p is None:
            continue
        key = str(Path(p).expanduser().resolve())
        lock = folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(
                f"{flag} {p}: another mcqflow run (pid {other}) is writing it; wait for it or give another path"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.append(fd)
