"""Where the time of one proxy training step goes: Paddle's profiler over a few fwd+bwd+SGD steps of
the largest official code (standalone model), ops sorted by total CPU time.

  python benchmarks/profile_step.py [--batch 128] [--steps 3]
"""
from __future__ import annotations

import argparse
import re
import tempfile

from common import FMNIST28, environment, print_table, size_codes, write_json

import paddle
import paddle.nn.functional as F
import paddle.profiler as profiler

from supernet.resnet import ResNet48


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/profile_step.json")
    a = p.parse_args()
    m = ResNet48.from_code(size_codes()["largest"], FMNIST28)
    x, y = paddle.randn([a.batch, 1, 28, 28]), paddle.randint(0, 10, [a.batch])
    opt = paddle.optimizer.Momentum(0.01, parameters=m.parameters())

    def step():
        F.cross_entropy(m(x), y).backward()
        opt.step()
        opt.clear_grad()

    for _ in range(2):
        step()
    prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda _: None)  # no trace files
    prof.start()
    for _ in range(a.steps):
        step()
        prof.step()
    prof.stop()
    with tempfile.TemporaryFile("w+") as f:
        import contextlib
        with contextlib.redirect_stdout(f):
            prof.summary(op_detail=False, sorted_by=profiler.SortedKeys.CPUTotal, time_unit="ms")
        f.seek(0)
        text = f.read()
    section = text.split("Operator Summary")[1] if "Operator Summary" in text else text
    rows = []
    for line in section.splitlines():
        mt = re.match(r"^(\S.*?)\s{2,}(\d+)\s+([\d.]+) / [\d.]+ / [\d.]+ / [\d.]+ / ([\d.]+)", line)
        if mt and not line.startswith(" "):
            rows.append({"op": mt.group(1), "calls": int(mt.group(2)), "total_ms": float(mt.group(3)) / a.steps,
                         "share_%": float(mt.group(4))})
    rows = sorted(rows, key=lambda r: -r["total_ms"])[:12]
    print_table(f"one training step of the largest code, batch {a.batch}: CPU time per step by op", rows,
                ["op", "calls", "total_ms", "share_%"])
    write_json(a.out, {"env": environment(), "batch": a.batch, "ops": rows})


if __name__ == "__main__":
    main()
