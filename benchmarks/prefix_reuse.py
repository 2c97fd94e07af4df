"""What does prefix reuse save when scoring the 45k list? (supernet/fused.py)

A real run scores each process's codes sorted by their leading layers (stem, then blocks), so what
consecutive subnets share is what a window of that sorted share shares, and that depends on how dense
the share is: ``--stride 16`` takes every 16th code of the file (what a process got from
``--shard i/8`` under two ranks before shares became contiguous), ``--stride 1`` all of them (a
contiguous share of the sorted list, what ``evaluate.shard_keys`` gives now, whatever the number of
shards). A window of --window consecutive codes from fraction --at of that sorted list is scored (BN
recalibration on K x 128 training images, then --val-images test images, as eval_subnets.py does) by
three fused engines: no reuse, reuse within the first stage, within the first two stages (the
default), rotating their order per chunk of --chunk codes so that all see the same machine load. It
checks that all give bit-identical logits on every code, and reports seconds per subnet, speed-ups
and each divided by the pure forward of the same images (the subnet already prepared, no calibration;
timed in the same chunks): the scoring cost ratio.

  python benchmarks/prefix_reuse.py --checkpoint output/supernet_d8/supernet.pdparams --stride 1 --window 60
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from common import environment, print_table, write_json

from supernet import archfile
from supernet.evaluate import EvalData, ScoreSettings, load_supernet, prefix_order
from supernet.fused import FusedEngine, layout
from supernet.space import channel_plan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--archs", default=str(archfile.default_shared_dir() / "data" / "CVPR_2022_NAS_Track1_test.json"))
    p.add_argument("--stride", type=int, default=1, help="the share: every N-th code of the file")
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--at", type=float, default=0.7, help="where the window starts, as a fraction of the sorted share")
    p.add_argument("--chunk", type=int, default=10)
    p.add_argument("--val-images", type=int, default=2000)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--out", default="benchmarks/results/prefix_reuse.json")
    a = p.parse_args()
    archs = archfile.read_archs(a.archs)
    share = sorted((x for i, x in enumerate(archs.values()) if i % a.stride == 0), key=prefix_order)
    offset = int(a.at * len(share))
    window = share[offset: offset + a.window]
    model, cfg = load_supernet(a.checkpoint)
    data = EvalData(cfg, ScoreSettings(a.val_images, a.calib_batches, 128, 500, 0, "fused"))
    state = data.fused.state(model)
    calib, xs = data.fused.calib, [x for x, _ in data.val]
    engines = {"none": FusedEngine(prefix_budget=0), "stage1": FusedEngine(prefix_stages=1),
               "stage2": FusedEngine(prefix_stages=2)}
    seconds = {k: 0.0 for k in (*engines, "forward")}
    mismatches = {k: 0 for k in engines}
    names = list(engines)
    bar = tqdm(range(0, len(window), a.chunk), desc="chunks")
    for start in bar:
        chunk = window[start: start + a.chunk]
        outs: dict[str, list[list[np.ndarray]]] = {}
        rot = start // a.chunk % len(names)
        for name in names[rot:] + names[:rot]:
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
        for name in names[1:]:
            mismatches[name] += sum(not all(np.array_equal(g, w) for g, w in zip(r, n))
                                    for r, n in zip(outs[name], outs["none"]))
    n = len(window)
    rows = [{"engine": name, "s_per_subnet": seconds[name] / n, "speedup_vs_none": seconds["none"] / seconds[name],
             "ratio_to_pure_forward": seconds[name] / seconds["forward"],
             "levels_reused_per_subnet": engines[name].prefix_hits / n, "mismatched_codes": mismatches[name]}
            for name in names]
    print_table(f"prefix reuse on {n} consecutive codes of the sorted share (every {a.stride}. code, from "
                f"{a.at:.0%}); pure forward {seconds['forward'] / n:.3f} s/subnet", rows, list(rows[0]))
    write_json(a.out, {"env": environment(), "args": vars(a), "codes": n, "share_codes": len(share),
                       "val_images": data.n_val, "calib_batches": a.calib_batches,
                       "s_pure_forward": seconds["forward"] / n, "engines": rows})
    if any(mismatches.values()):
        raise SystemExit(f"error: codes scored differently with prefix reuse: {mismatches}")


if __name__ == "__main__":
    main()
