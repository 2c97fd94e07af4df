"""Shared fixtures: paths to ../shared data (tests skip with a reason when absent) and tiny data."""
from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("NAS_SHARED_DIR", ROOT.parent / "shared"))
OFFICIAL_45K = SHARED / "data" / "CVPR_2022_NAS_Track1_test.json"
DEV_GT = SHARED / "proxy_gt" / "dev_gt.json"


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data is read from ../shared, never copied into the repo)")
    return path


@pytest.fixture
def official_45k() -> Path:
    return need(OFFICIAL_45K)


@pytest.fixture
def dev_gt() -> Path:
    return need(DEV_GT)


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fmnist(tmp_path: Path) -> Path:
    """Four IDX files of random 28x28 images (shape-correct, content meaningless)."""
    rng = np.random.default_rng(0)
    d = tmp_path / "fmnist"
    d.mkdir()
    for prefix, n in (("train", 96), ("t10k", 40)):
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return d


def real_fmnist() -> Path:
    """The real Fashion-MNIST (system package or cache, fetched once); skip when it cannot be had."""
    from supernet.data import DataError, find_fmnist

    try:
        return find_fmnist()
    except DataError as e:
        pytest.skip(f"Fashion-MNIST unavailable: {e}")


def run_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def descendants(pid: int) -> list[int]:
    """Every process started under ``pid`` (read off /proc; the launcher starts its workers with setsid, so
    a process group does not hold them)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    out, frontier = [], [pid]
    while frontier:
        kids = [c for c, pp in parent.items() if pp in frontier]
        out += kids
        frontier = kids
    return out


def run_and_kill(cmd: list[str], ready, timeout: float = 600, env: dict | None = None) -> None:
    """Start ``cmd`` and SIGKILL it, with every process it started (a launcher's workers too), as soon as
    ``ready()`` is true (it must still be running then): a machine that dies."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, env=env or run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.005)
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
