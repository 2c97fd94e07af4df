"""Ground-truth jobs per CPU-hour: how to split the cores between standalone-training jobs.

Runs the same short pretrain.py job (the median code of the 45k list by proxy MACs, a fixed number of
training images and epochs) in each layout, in alternating rounds so load drifts hit all alike:
  1x2: one job at a time with 2 threads;  2x1: two jobs at once with 1 thread each (as gt_campaign does).
Reports seconds per job and jobs per hour of the whole machine for each.

  python benchmarks/gt_throughput.py [--width-divisor 8] [--train-images 12000] [--epochs 1] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, environment, print_table, size_codes, write_json


def run_jobs(n: int, threads: int, a: argparse.Namespace, code: str, work: Path) -> float:
    """Wall seconds to run ``n`` jobs at once with ``threads`` each."""
    procs = []
    t = time.time()
    for i in range(n):
        out = Path(tempfile.mkdtemp(dir=work))
        cmd = [sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", code, "--seed", str(i), "--output_dir",
               str(out), "--width_divisor", str(a.width_divisor), "--train_images", str(a.train_images),
               "--val_images", "2000", "--max_epoch", str(a.epochs), "--eval_every", "0", "--device", "cpu"]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"pretrain failed: {err[-2000:]}")
    return time.time() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width-divisor", type=int, default=8)
    p.add_argument("--train-images", type=int, default=12000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/gt_throughput.json")
    a = p.parse_args()
    code = size_codes()["median"].code
    layouts = {"1x2": (1, 2), "2x1": (2, 1)}
    per_job: dict[str, list[float]] = {k: [] for k in layouts}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):
            for name, (n, threads) in layouts.items():
                per_job[name].append(run_jobs(n, threads, a, code, Path(tmp)) / n)
    rows = []
    for name, (n, threads) in layouts.items():
        s = min(per_job[name])  # least disturbed round
        rows.append({"layout": name, "jobs_at_once": n, "threads_each": threads, "s_per_job_wall": s * n,
                     "machine_s_per_job": s, "jobs_per_hour": 3600 / s, "rounds": per_job[name]})
    base = rows[0]["jobs_per_hour"]
    for r in rows:
        r["vs_1x2"] = r["jobs_per_hour"] / base
    print_table(f"pretrain jobs per hour on {os.cpu_count()} cores: median code {code}, divisor {a.width_divisor}, "
                f"{a.train_images} images x {a.epochs} epoch(s)", rows,
                ["layout", "jobs_at_once", "threads_each", "s_per_job_wall", "machine_s_per_job", "jobs_per_hour",
                 "vs_1x2"])
    write_json(a.out, {"env": environment(), "args": vars(a), "code": code, "rows": rows})


if __name__ == "__main__":
    main()
