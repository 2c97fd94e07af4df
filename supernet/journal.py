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
            with open(self.path, "w") as f:
                f.write(json.dumps({"header": header}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        self._f = open(self.path, "a")

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good_end = raw.rfind(b"\n") + 1
        if good_end < len(raw):
            log.warning("%s: dropping a torn last line (the run was killed while writing it)", self.path)
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
        try:
            lines = raw[:good_end].decode("utf-8").splitlines()
            head = json.loads(lines[0]).get("header") if lines else None
            records = [json.loads(line) for line in lines[1:]]
        except (UnicodeDecodeError, ValueError, AttributeError) as e:
            raise JournalError(f"{self.path} is not a journal ({e}); use another output folder") from e
        if not lines:
            raise JournalError(f"{self.path} is empty; delete it to start over")
        if head != self.header:
            diff = {k: (head.get(k) if isinstance(head, dict) else None, v) for k, v in self.header.items()
                    if not isinstance(head, dict) or head.get(k) != v}
            raise JournalError(f"{self.path} was written by another checkpoint or other settings ({diff}); "
                               "use another output folder or delete the journal")
        for n, rec in enumerate(records, 2):
            if not (isinstance(rec, dict) and isinstance(rec.get("arch"), str) and self.valid(rec)):
                raise JournalError(f"{self.path}:{n}: not a finished record with a code and valid scores")
            self.done[rec["arch"]] = rec

    def append(self, rec: dict) -> None:
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.done[rec["arch"]] = rec

    def close(self) -> None:
        self._f.close()


def read_journals(folder: Path, header: dict, valid: Callable[[dict], bool] = lambda r: True) -> dict[str, dict]:
    """code -> finished record, from every ``journal*.jsonl`` in ``folder`` (all shards and ranks)."""
    done: dict[str, dict] = {}
    for p in sorted(Path(folder).glob("journal*.jsonl")):
        j = Journal(p, header, valid)
        j.close()
        done.update(j.done)
    return done
