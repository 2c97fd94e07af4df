"""What does prefix reuse save when scoring a shard of the 45k list? (supernet/fused.py, issue 13)

A real run scores each shard's codes sorted by their leading layers (stem, first-stage blocks), so
what consecutive subnets share is what a window of that sorted shard shares. This takes --window
consecutive codes of shard --shard of the official list in that order and scores them (BN
recalibration on K x 128 training images, then --val-images test images, as eval_subnets.py does)
with two fused engines, one reusing prefixes and one not, alternating chunks of --chunk codes so that
both see the same machine load. It checks that both give bit-identical logits on every code, and
reports seconds per subnet, their ratio, and each divided by the pure forward of the same images
(the subnet already prepared, no calibration; timed in the same chunks): issue 13's cost ratio.

  python benchmarks/prefix_reuse.py --checkpoint output/supernet_d8/supernet.pdparams \
      --archs ../shared/data/CVPR_2022_NAS_Track1_test.json --shard 0/8 --window 150
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from common import environment, print_table, write_json

from supernet import archfile
from supernet.evaluate import EvalData, ScoreSettings, load_supernet, prefix_order, shard_keys
from supernet.fused import FusedEngine, layout
from supernet.space import channel_plan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--archs", default=str(archfile.default_shared_dir() / "data" / "CVPR_2022_NAS_Track1_test.json"))
    p.add_argument("--shard", default="0/8")
    p.add_argument("--window", type=int, default=150)
    p.add_argument("--offset", type=int, default=0, help="where the window starts in the sorted shard")
    p.add_argument("--chunk", type=int, default=10)
    p.add_argument("--val-images", type=int, default=2000)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--out", default="benchmarks/results/prefix_reuse.json")
    a = p.parse_args()
    index, count = (int(v) for v in a.shard.split("/"))
    archs = archfile.read_archs(a.archs)
    keys = shard_keys(list(archs), index, count)
    window = sorted((archs[k] for k in keys), key=prefix_order)[a.offset: a.offset + a.window]
    model, cfg = load_supernet(a.checkpoint)
    data = EvalData(cfg, ScoreSettings(a.val_images, a.calib_batches, 128, 500, 0, "fused"))
    state = data.fused.state(model)
    calib, xs = data.fused.calib, [x for x, _ in data.val]
    engines = {"reuse": FusedEngine(), "none": FusedEngine(prefix_budget=0)}
    seconds = {k: 0.0 for k in (*engines, "forward")}
    mismatches = 0
    bar = tqdm(range(0, len(window), a.chunk), desc="chunks")
    for start in bar:
        chunk = window[start: start + a.chunk]
        outs: dict[str, list[list[np.ndarray]]] = {}
        for name in (("reuse", "none") if start // a.chunk % 2 == 0 else ("none", "reuse")):
            eng, t = engines[name], time.perf_counter()
            outs[name] = [eng.logits(layout(channel_plan(model.set_active(arch), data.net), data.net), state, xs, calib)
                          for arch in chunk]
            seconds[name] += time.perf_counter() - t
        for arch in chunk:  # the floor: forward only, through the engine without reuse, weights prepared
            eng = engines["none"]
            prep = eng.prepare(layout(channel_plan(model.set_active(arch), data.net), data.net), state, calib)
            eng.forward(prep, xs[:1])  # weights reordered into the primitives' layouts outside the timing
            t = time.perf_counter()
            eng.forward(prep, xs)
            seconds["forward"] += time.perf_counter() - t
        mismatches += sum(not all(np.array_equal(g, w) for g, w in zip(r, n)) for r, n in zip(outs["reuse"], outs["none"]))
    n = len(window)
    row = {"codes": n, "shard": a.shard, "offset": a.offset, "val_images": data.n_val, "calib_batches": a.calib_batches,
           "s_per_subnet_reuse": seconds["reuse"] / n, "s_per_subnet_none": seconds["none"] / n,
           "speedup": seconds["none"] / seconds["reuse"], "s_pure_forward": seconds["forward"] / n,
           "ratio_reuse": seconds["reuse"] / seconds["forward"], "ratio_none": seconds["none"] / seconds["forward"], "levels_reused_per_subnet": engines["reuse"].prefix_hits / n,
           "mismatched_codes": mismatches}
    print_table(f"prefix reuse on {n} consecutive codes of shard {a.shard} (sorted), alternating chunks of {a.chunk}",
                [row], list(row))
    write_json(a.out, {"env": environment(), "args": vars(a), **row, "distinct_prefixes_in_shard": len(
        {(x.stem, x.blocks[0]) for x in (archs[k] for k in keys)}), "shard_codes": len(keys)})
    if mismatches:
        raise SystemExit(f"error: {mismatches} codes scored differently with prefix reuse")


if __name__ == "__main__":
    main()
