"""Does the fused scoring engine's memory stay flat over many subnets? Scores --codes codes of the official
distribution (calibration + a few evaluation batches each) and prints the primitive cache size and the
resident memory every --every codes.

  python benchmarks/eval_memory.py --codes 1500 --every 250
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import environment, print_table, write_json

from supernet.fused import FusedEngine, layout
from supernet.resnet import SuperNet
from supernet.runtime import rss_mb
from supernet.space import FMNIST28, OFFICIAL_SPACE, channel_plan, iter_sample


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codes", type=int, default=1500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--out", default="benchmarks/results/eval_memory.json")
    a = p.parse_args()
    cfg = FMNIST28
    state = {k: v.numpy() for k, v in SuperNet(cfg).state_dict().items()}
    engine = FusedEngine()
    rng = np.random.default_rng(0)
    calib = [rng.random((128, 1, 28, 28), np.float32)]
    batches = [rng.random((500, 1, 28, 28), np.float32), rng.random((100, 1, 28, 28), np.float32)]
    rows, t0 = [], time.time()
    for i, arch in enumerate(iter_sample(OFFICIAL_SPACE, a.codes, seed=7), 1):
        engine.logits(layout(channel_plan(arch, cfg), cfg), state, batches, calib)
        if i == 1 or i % a.every == 0:
            rows.append({"codes": i, "cache_entries": len(engine.cache), "rss_mb": rss_mb(),
                         "seconds": time.time() - t0})
            print_table("so far", rows[-1:], list(rows[0]))
    print_table("fused engine memory over codes", rows, list(rows[0]))
    write_json(a.out, {"env": environment(), "args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
