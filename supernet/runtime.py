"""Process-level plumbing: device, distributed context, logging, atomic files and JSON logs."""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paddle
import paddle.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: str  # "cpu" or "gpu:N"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("gpu")


def setup(device: str = "auto", seed: int | None = None) -> Context:
    """Pick the device (GPU when built with CUDA and present), join the process group if launched."""
    if device == "auto":
        device = "gpu" if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else "cpu"
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
    if device == "gpu":
        device = f"gpu:{int(os.environ.get('FLAGS_selected_gpus', os.environ.get('PADDLE_LOCAL_RANK', '0')).split(',')[0])}"
    paddle.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    if seed is not None:
        paddle.seed(seed)
    setup_logging(rank)
    return Context(rank=rank, world=world, device=device)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after set-up, e.g. by tests)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def rss_mb() -> float | None:
    """This process's resident memory in MB (Linux /proc; None elsewhere): journals record it so a long
    run's memory growth can be checked afterwards."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def setup_logging(rank: int = 0, level: int = logging.INFO) -> None:
    """Log to stderr; ranks other than 0 only warn, so the console shows one story."""
    root = logging.getLogger()
    if getattr(root, "_resnet48_nas", False):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank{rank}] %(levelname)s %(message)s", "%H:%M:%S"))
    root.handlers[:] = [handler]
    root.setLevel(level if rank == 0 else logging.WARNING)
    root._resnet48_nas = True  # type: ignore[attr-defined]


def ranks_agree(ctx: Context, value: int) -> bool:
    """True when every rank holds the same ``value`` (min and max over ranks agree)."""
    if ctx.world == 1:
        return True
    t = paddle.to_tensor([value, -value], dtype="int64")
    lo, hi = t.clone(), t.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool((lo == hi).all())


def broadcast_state(ctx: Context, layer) -> None:
    """Every parameter and buffer of ``layer`` set to rank 0's (after a load: all ranks then start alike)."""
    if ctx.world == 1:
        return
    with paddle.no_grad():
        for t in layer.state_dict().values():
            dist.broadcast(t, src=0)


def barrier(ctx: Context) -> None:
    """All ranks meet here. Only for points the ranks reach within seconds of each other: on CPU
    (gloo) a barrier gives up after 30 s; wait for long work on files instead (evaluate.wait_for_scores)."""
    if ctx.world > 1:
        dist.barrier()


def _new_file_mode(path: Path) -> int:
    """The mode a rewrite of ``path`` keeps: the existing file's, else what the umask gives a new file
    (mkstemp's own 0600 would strip others' read access from a shared GT or submission file)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename: never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def strict(obj: Any) -> Any:
    """``obj`` with every NaN or infinity replaced by None: ``json.dumps`` would write bare ``NaN`` tokens,
    which strict JSON parsers reject. Whoever produces such a number says why beside it."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN or Infinity tokens; see ``strict``)."""
    return json.dumps(strict(obj), indent=indent, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    atomic_write_bytes(path, (dumps(obj, indent) + "\n").encode())


class JsonLog:
    """Append-only JSON-lines log (one record per line, flushed), for curves and post-mortems."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: Any) -> None:
        if self.path is None:
            return
        record.setdefault("time", round(time.time(), 3))
        with open(self.path, "a") as f:
            f.write(dumps(record) + "\n")
