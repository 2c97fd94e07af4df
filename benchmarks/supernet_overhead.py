"""Supernet overhead on the proxy input: forward+backward of the supernet with a code active,
divided by the same for that code's standalone model (same weights), for the smallest, a median
and the largest official code; and one sandwich step against the sum of its subnets' standalone steps.

  python benchmarks/supernet_overhead.py [--batch 128] [--rounds 5] [--out benchmarks/results/supernet_overhead.json]
"""
from __future__ import annotations

import argparse

from common import FMNIST28, OFFICIAL_SPACE, environment, interleaved, print_table, size_codes, write_json

import paddle
import paddle.nn.functional as F

from supernet.resnet import SuperNet
from supernet.supernet_train import sandwich


def fwd_bwd(model, x, y):
    def run():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        model.clear_gradients(set_to_zero=False)
        return float(loss)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/supernet_overhead.json")
    a = p.parse_args()
    paddle.seed(0)
    x = paddle.randn([a.batch, 1, 28, 28])
    y = paddle.randint(0, 10, [a.batch])
    sn = SuperNet(FMNIST28)
    sn.train()
    rows = []
    for name, arch in size_codes().items():
        sub = sn.extract(arch)
        sub.train()

        def super_step(arch=arch):
            sn.set_active(arch)
            return fwd_bwd(sn, x, y)()

        t = interleaved({"standalone": fwd_bwd(sub, x, y), "supernet": super_step}, a.rounds)
        rows.append({"code": name, "arch": arch.code, "standalone_ms": t["standalone"] * 1e3,
                     "supernet_ms": t["supernet"] * 1e3, "ratio": t["supernet"] / t["standalone"]})
    print_table(f"supernet fwd+bwd / standalone fwd+bwd, proxy input, batch {a.batch}", rows,
                ["code", "standalone_ms", "supernet_ms", "ratio"])

    sw = {"largest": True, "smallest": True, "num_random": 2}
    subnets = sandwich(OFFICIAL_SPACE, sw, 0, 0)
    standalones = [sn.extract(s.arch) for s in subnets]
    for m in standalones:
        m.train()

    def sandwich_step():
        for s in subnets:
            sn.set_active(s.arch)
            loss = F.cross_entropy(sn(x), y) / len(subnets)
            loss.backward()
        sn.clear_gradients(set_to_zero=False)
        return float(loss)

    def standalone_steps():
        for m in standalones:
            fwd_bwd(m, x, y)()

    t = interleaved({"sandwich": sandwich_step, "standalone_sum": standalone_steps}, a.rounds, per_round=1)
    srow = {"sandwich_ms": t["sandwich"] * 1e3, "sum_of_standalone_ms": t["standalone_sum"] * 1e3,
            "ratio": t["sandwich"] / t["standalone_sum"], "subnets": [s.arch.code for s in subnets]}
    print_table("one sandwich step (largest, smallest, 2 random) / sum of the 4 standalone fwd+bwd", [srow],
                ["sandwich_ms", "sum_of_standalone_ms", "ratio"])
    write_json(a.out, {"env": environment(), "batch": a.batch, "per_code": rows, "sandwich": srow})


if __name__ == "__main__":
    main()
