"""Checkpoints that survive a kill: atomic, checksummed, and resumed from the newest good one.

Each checkpoint is two files: ``<name>.pdckpt`` (paddle.save of model, optimizer, scheduler and
any extra state) and ``<name>.json`` (sha256 of the first, global step, epoch, run fingerprint),
written in that order, each atomically. A checkpoint counts only when its JSON exists and the
checksum matches, so a partial or corrupted file is detected and the previous one used.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import paddle

from .runtime import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)
SUFFIX = ".pdckpt"


class CheckpointError(ValueError):
    """A run cannot start or resume in this checkpoint folder as asked."""


def _name(step: int) -> str:
    return f"ckpt_s{step:09d}"


def save(ckpt_dir: str | Path, state: dict[str, Any], step: int, meta: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` as checkpoint of global ``step``; keep the ``keep`` newest good ones."""
    d = Path(ckpt_dir)
    buf = io.BytesIO()
    paddle.save(state, buf)
    data = buf.getvalue()
    path = d / (_name(step) + SUFFIX)
    atomic_write_bytes(path, data)
    atomic_write_json(path.with_suffix(".json"), {**meta, "step": step, "sha256": hashlib.sha256(data).hexdigest(),
                                                  "bytes": len(data)})
    # the one just written is never deleted, whatever else the folder holds; at least one is kept
    for old in [c for c in list_checkpoints(d) if c != path][max(1, keep) - 1:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return path


def list_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """Checkpoint files with a JSON record, newest first."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    return sorted((p for p in d.glob("ckpt_s*" + SUFFIX) if p.with_suffix(".json").is_file()), reverse=True)


def load_latest(ckpt_dir: str | Path, fingerprint: str | None = None,
                also: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(state, meta) of the newest checkpoint that verifies, or None when there is none.

    A checkpoint of another run (different fingerprint) is refused with an error, not skipped; ``also``
    names earlier fingerprints of the same run (a run identity that changed form).
    """
    for path in list_checkpoints(ckpt_dir):
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            data = path.read_bytes()
        except (OSError, ValueError) as e:
            log.warning("checkpoint %s unreadable (%s); trying the previous one", path, e)
            continue
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            log.warning("checkpoint %s is corrupt (checksum mismatch); trying the previous one", path)
            continue
        if fingerprint is not None and meta.get("fingerprint") not in (None, fingerprint, *also):
            raise CheckpointError(f"checkpoint {path} belongs to another run (fingerprint {meta.get('fingerprint')}, "
                             f"this run {fingerprint}); use another output folder or drop --resume")
        try:
            state = paddle.load(io.BytesIO(data))
        except Exception as e:  # noqa: BLE001 - any unpickling failure means unusable
            log.warning("checkpoint %s cannot be loaded (%s); trying the previous one", path, e)
            continue
        log.info("resuming from %s (step %s, epoch %s)", path, meta.get("step"), meta.get("epoch"))
        return state, meta
    return None


def check_start(ckpt_dir: str | Path, fingerprint: str, resume: bool, also: tuple[str, ...] = ()) -> None:
    """Refuse, before anything is written, a start that would mix or lose runs.

    A fresh start into a folder that already holds checkpoints would interleave two runs' files
    (and rotation could delete the new ones); a resume must find checkpoints of the same run.
    """
    found = list_checkpoints(ckpt_dir)
    if not found:
        return
    if not resume:
        raise CheckpointError(f"{ckpt_dir} already holds checkpoints (newest {found[0].name}); pass --resume to "
                              "continue that run, or choose another output folder")
    for path in found:
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("fingerprint") not in (None, fingerprint, *also):
            raise CheckpointError(f"checkpoint {path} belongs to another run (its config or overrides differ from "
                                  "these; the folder's config.yaml holds the ones it was started with): resume it "
                                  "with those, or choose another output folder")
        return


def fingerprint(obj: Any) -> str:
    """Short stable hash of a JSON-able description of a run (config, arch, data)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
