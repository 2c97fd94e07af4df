"""Where a command writes: never over one of its inputs, and never two runs into one folder.

Two rules every entry point follows, kept here so that no tool has its own version:

- ``overwrite_problem(outputs, inputs)``: every file a command is about to write, after resolving
  symbolic links and the suffixes it adds (``--out X`` writing ``X.json``), is compared with every
  file it reads; one that is (or would replace) an input is refused before any work.
- ``FolderLock``: a run holds its output folder for its whole life. The lock is ``flock`` on a file in
  the folder, so the kernel releases it when the process dies, however it dies; the file records the
  owner's pid and host for the message a second run gets. A lock file left by a dead process is taken
  over with a note in the log.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterable

from .cli import clip, writable_file

log = logging.getLogger(__name__)


class OutputError(ValueError):
    """An output that would destroy an input, or a folder that another run holds."""


def resolved(path: str | Path) -> Path:
    """``path`` with every symbolic link (of the file and its folders) followed, absolute."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def overwrite_problem(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None], option: str) -> str | None:
    """Why writing ``outputs`` is unsafe: one is (through links) one of ``inputs``, is a folder, or cannot be
    written. ``option`` names the command-line option in the message."""
    given = {resolved(i): Path(i) for i in inputs if i}
    for out in outputs:
        target = resolved(out)
        if target in given:
            return (f"{option} {clip(out)} would overwrite the input {clip(given[target])}; "
                    "choose another output name")
        problem = writable_file(out, option)
        if problem:
            return problem
    return None


class FolderLock:
    """Exclusive hold of ``folder`` for one process (``with FolderLock(out, "rank0"):``).

    ``name`` separates locks of cooperating processes in one folder (each rank of a launch holds its
    own, so a second launch into the folder is refused at every rank)."""

    def __init__(self, folder: str | Path, name: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / f".{name}.lock"
        self._f = None

    def acquire(self) -> "FolderLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+")
        except OSError as e:
            raise OutputError(f"{clip(self.folder)}: cannot hold the output folder ({e.strerror})") from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _owner(f)
            f.close()
            raise OutputError(f"{clip(self.folder)} is in use by another run ({owner}); wait for it to finish, "
                              "stop it, or choose another output folder") from None
        stale = _owner(f, default="")
        if stale:
            log.info("%s: taking over the lock left by a run that is no longer running (%s)", self.folder, stale)
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": round(time.time(), 1)}) + "\n")
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is None:
            return
        try:
            self._f.seek(0)
            self._f.truncate()  # an empty lock file says: released cleanly
            fcntl.flock(self._f, fcntl.LOCK_UN)
        except OSError:
            pass
        self._f.close()
        self._f = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _owner(f, default: str = "owner unknown") -> str:
    try:
        f.seek(0)
        rec = json.loads(f.read() or "null")
        return f"pid {rec['pid']} on {rec['host']}" if isinstance(rec, dict) else default
    except (OSError, ValueError, KeyError):
        return default
