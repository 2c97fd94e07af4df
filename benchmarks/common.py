"""Helpers shared by the benchmarks: timing, codes of the official list by MACs, table output."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import supernet  # noqa: E402,F401  (thread and MKL defaults before paddle)
import paddle  # noqa: E402

from supernet.archfile import official_45k_path, read_entries  # noqa: E402
from supernet.space import FMNIST28, OFFICIAL_SPACE, Arch, count_cost, parse_code  # noqa: E402


def environment() -> dict:
    return {"paddle": paddle.__version__, "python": platform.python_version(), "cpu": platform.processor() or
            platform.machine(), "cores": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "MKL_DEBUG_CPU_TYPE": os.environ.get("MKL_DEBUG_CPU_TYPE")}


def size_codes() -> dict[str, Arch]:
    """Smallest, median and largest code by proxy MACs: from the official 45k file when present,
    else the extremes of the 45k space and a sampled median."""
    path = official_45k_path()
    if path is not None:
        archs = [parse_code(v["arch"]) for v in read_entries(path).values()]
    else:
        from supernet.space import iter_sample
        archs = [OFFICIAL_SPACE.largest(), OFFICIAL_SPACE.smallest(), *iter_sample(OFFICIAL_SPACE, 999, seed=0)]
    archs.sort(key=lambda a: count_cost(a, FMNIST28).macs)
    return {"smallest": archs[0], "median": archs[len(archs) // 2], "largest": archs[-1]}


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 2) -> list[float]:
    """Per-call seconds of ``fn`` (which must sync, e.g. by reading a value back)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, per_round: int = 3) -> dict[str, float]:
    """Median seconds per call of each fn, measured in alternating rounds so load drifts hit all alike."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        timeit(f, 0, warmup=2)
    for _ in range(rounds):
        for k, f in fns.items():
            samples[k] += timeit(f, per_round, warmup=0)
    return {k: statistics.median(v) for k, v in samples.items()}


def print_table(title: str, rows: list[dict], cols: list[str]) -> None:
    print(f"\n{title}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(cols, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def portable(obj):
    """``obj`` with absolute paths of this checkout or its neighbours (../shared) made relative to the
    repo, so results do not record the machine they ran on."""
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("/"):
        for anchor in (ROOT, ROOT.parent):
            if obj == str(anchor) or obj.startswith(str(anchor) + "/"):
                return os.path.relpath(obj, ROOT)
    return obj


def write_json(path: str | Path, obj: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(portable(obj), indent=1) + "\n")
    print(f"\nJSON: {path}")


def union_seconds(spans: list[tuple[float, float]]) -> float:
    """Length of the union of (start, stop) intervals: a run's wall time from its processes' busy spans,
    without the gaps between a kill and its resume."""
    total, cur = 0.0, None
    for start, stop in sorted(spans):
        if cur is None or start > cur[1]:
            total += 0 if cur is None else cur[1] - cur[0]
            cur = [start, stop]
        else:
            cur[1] = max(cur[1], stop)
    return total + (cur[1] - cur[0] if cur else 0.0)
