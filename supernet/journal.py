"""Crash-safe journals of finished work, bound to what produced them.

A journal is a JSON-lines file: a header naming the inputs and settings (a checkpoint's sha256, the
scoring or predictor settings), then one record per finished code, each flushed and fsynced. Reopened,
it continues where it stopped; a torn last line (killed mid-write) is dropped; a header that differs
from this run's is refused, never mixed in. Records are keyed by code, never by an arch file's key.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class JournalError(ValueError):
    pass


class Journal:
    """Append-only record of finished codes; ``valid(record)`` checks each record read back."""

    def __init__(self, path: Path, header: dict, valid: Callable[[dict], bool] = lambda r: True) -> None:
        self.path, self.header, self.valid = Path(path), header, valid
        self.done: dict[str, dict] = {}  # code -> record
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")  # readers never see a headless journal
            with open(tmp, "w") as f:
                f.write(json.dumps({"header": header}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        self._f = open(self.path, "a")

    def _load(self) -> None:
        self.done, good_end = read_journal(self.path, self.header, self.valid)
        if good_end < self.path.stat().st_size:
            log.warning("%s: dropping a torn last line (the run was killed while writing it)", self.path)
            with open(self.path, "r+b") as f:
                f.truncate(good_end)

    def append(self, rec: dict) -> None:
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.done[rec["arch"]] = rec

    def close(self) -> None:
        self._f.close()


def read_journal(path: Path, header: dict, valid: Callable[[dict], bool] = lambda r: True
                 ) -> tuple[dict[str, dict], int]:
    """code -> finished record of one journal, and the byte length of its complete lines. Read only: a
    torn last line is left out, not cut off (its writer may be another process, still running)."""
    raw = Path(path).read_bytes()
    good_end = raw.rfind(b"\n") + 1
    try:
        lines = raw[:good_end].decode("utf-8").splitlines()
        head = json.loads(lines[0]).get("header") if lines else None
        records = [json.loads(line) for line in lines[1:]]
    except (UnicodeDecodeError, ValueError, AttributeError) as e:
        raise JournalError(f"{path} is not a journal ({e}); use another output folder") from e
    if not lines:
        raise JournalError(f"{path} is empty; delete it to start over")
    if head != header:
        diff = {k: (head.get(k) if isinstance(head, dict) else None, v) for k, v in header.items()
                if not isinstance(head, dict) or head.get(k) != v}
        raise JournalError(f"{path} was written by another checkpoint or other settings ({diff}); "
                           "use another output folder or delete the journal")
    done: dict[str, dict] = {}
    for n, rec in enumerate(records, 2):
        if not (isinstance(rec, dict) and isinstance(rec.get("arch"), str) and valid(rec)):
            raise JournalError(f"{path}:{n}: not a finished record with a code and valid scores")
        done[rec["arch"]] = rec
    return done, good_end


def read_journals(folder: Path, header: dict, valid: Callable[[dict], bool] = lambda r: True,
                  pattern: str = "journal*.jsonl") -> dict[str, dict]:
    """code -> finished record, from every journal in ``folder`` matching ``pattern`` (all shards and
    ranks by default). Read only, so it is safe while other processes append to them."""
    done: dict[str, dict] = {}
    for p in sorted(Path(folder).glob(pattern)):
        done.update(read_journal(p, header, valid)[0])
    return done
