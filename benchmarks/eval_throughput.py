"""Scoring throughput on the proxy: time per subnet (everything eval_subnets.py does per code: weights,
BN recalibration, evaluation, the score) for each engine, against the fastest engine's pure forward
of the same evaluation images (no calibration, no preparation, primitives/predictor already built).

Engines: ``dygraph`` (standalone model, oneDNN convolutions), ``predictor`` (paddle.jit.save + Paddle
Inference with oneDNN, per subnet), ``fused`` (supernet/fused.py: oneDNN primitives with BN folded,
nothing traced). The fused engine's primitive cache is warmed on other codes first, as it is after the
first few hundred codes of a real run. Also: subnets per hour and a projection of the 45k codes on
ImageNet val from the measured MACs/s (a projection, not a measurement).

  python benchmarks/eval_throughput.py --width-divisor 8 --val-images 2000 --calib-batches 1 --codes 6
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import OFFICIAL_SPACE, environment, print_table, timeit, write_json

import paddle

from supernet.config import load_config
from supernet.evaluate import EvalData, PredictorBackend, ScoreSettings, score
from supernet.fused import FusedEngine, layout
from supernet.resnet import SuperNet
from supernet.space import channel_plan, count_cost, iter_sample
from supernet.supernet_train import net_config

IMAGENET_45K_MACS_PER_IMAGE = 1.337e14  # sum over the 45k codes at 224x224 (SEARCH_SPACE.md: ~1.34e5 GMACs)


def best_of(fn, repeat: int = 2) -> float:
    """Fastest of ``repeat`` timed calls after one warm-up (the machine is shared)."""
    return min(timeit(fn, repeat, warmup=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width-divisor", type=int, default=None, help="default: the proxy config's")
    p.add_argument("--val-images", type=int, default=2000)
    p.add_argument("--calib-batches", type=int, default=1)
    p.add_argument("--calib-batch-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--codes", type=int, default=6)
    p.add_argument("--warm-codes", type=int, default=30, help="codes scored first to warm the fused engine's cache")
    p.add_argument("--engines", default="dygraph,predictor,fused")
    p.add_argument("--gpu-tmacs", type=float, default=12.0,
                   help="assumed effective inference rate of one GPU in TMAC/s for the projection (12: a V100 "
                        "running ResNet-50 at ~3,000 images/s; an assumption, not measured here)")
    p.add_argument("--imagenet-val-images", type=int, default=10_000, help="evaluation images per subnet on ImageNet")
    p.add_argument("--out", default="benchmarks/results/eval_throughput.json")
    a = p.parse_args()
    engines = a.engines.split(",")
    cfg = load_config(None)
    if a.width_divisor:
        cfg["model"]["width_divisor"] = a.width_divisor
    net = net_config(cfg["model"])
    t = time.perf_counter()
    data = {e: EvalData(cfg, ScoreSettings(a.val_images, a.calib_batches, a.calib_batch_size, a.batch_size, 0, e))
            for e in engines}
    cache_s = time.perf_counter() - t
    any_data = next(iter(data.values()))
    x_np = [np.ascontiguousarray(np.asarray(x), np.float32) for x, _ in any_data.val]
    x_pd = [paddle.to_tensor(x) for x in x_np]
    paddle.seed(0)
    sn = SuperNet(net)
    sn.eval()
    pool = sorted(iter_sample(OFFICIAL_SPACE, 200 + a.warm_codes, seed=1), key=lambda x: count_cost(x, net).macs)
    archs = [pool[round(i * (len(pool) - 1) / (a.codes - 1))] for i in range(a.codes)]
    warm = [x for x in pool if x not in archs][: a.warm_codes]
    if "fused" in data:
        t = time.perf_counter()
        for arch in warm:
            score(sn, arch, data["fused"])
        print(f"fused engine warmed on {len(warm)} codes in {time.perf_counter() - t:.1f} s "
              f"({len(data['fused'].fused.engine.cache)} cached primitives)")
    engine = FusedEngine()
    state = {k: v.numpy() for k, v in sn.state_dict().items()}
    rows = []
    totals = {k: 0.0 for k in ["fwd_floor", *(f"score_{e}" for e in engines)]}
    tot_macs = 0.0
    for arch in archs:
        sub = sn.extract(arch)
        sub.eval()
        fwd = {}

        @paddle.no_grad()
        def dygraph_fwd():
            return [sub(x).numpy() for x in x_pd][-1]

        fwd["dygraph"] = best_of(dygraph_fwd)
        run = PredictorBackend(any_data.input_shape).load(sub)
        fwd["predictor"] = best_of(lambda: [run(x) for x in x_np][-1])
        prepared = engine.prepare(layout(channel_plan(arch, net), net), state)
        fwd["fused"] = best_of(lambda: engine.forward(prepared, x_np))
        floor = min(fwd.values())
        row = {"MMACs": count_cost(arch, net).macs / 1e6, **{f"fwd_{k}_s": v for k, v in fwd.items()}}
        for e in engines:
            t = time.perf_counter()
            sc = score(sn, arch, data[e])
            row[f"score_{e}_s"] = time.perf_counter() - t
            row[f"ratio_{e}"] = row[f"score_{e}_s"] / floor
            totals[f"score_{e}"] += row[f"score_{e}_s"]
            row[f"acc_{e}"] = sc.top1
        totals["fwd_floor"] += floor
        tot_macs += count_cost(arch, net).macs * any_data.n_val
        rows.append(row)
    print_table(f"per subnet, widths/{net.width_divisor}: pure forward of {any_data.n_val} images per engine, and "
                f"score (weights + {a.calib_batches}x{a.calib_batch_size} calibration + evaluation) per engine; "
                "ratio = score / fastest pure forward", rows, list(rows[0]))
    summary = {"width_divisor": net.width_divisor, "val_images": any_data.n_val, "calib_batches": a.calib_batches,
               "calib_batch_size": a.calib_batch_size, "cache_seconds": cache_s}
    for e in engines:
        summary[f"ratio_{e}"] = totals[f"score_{e}"] / totals["fwd_floor"]
        summary[f"subnets_per_hour_{e}"] = 3600 * len(rows) / totals[f"score_{e}"]
    best = min(engines, key=lambda e: totals[f"score_{e}"])
    macs_per_s = tot_macs / totals[f"score_{best}"]
    ratio = totals[f"score_{best}"] / totals["fwd_floor"]
    summary.update({"fastest_engine": best, "effective_GMACs_per_s": macs_per_s / 1e9,
                    "projected_45k_imagenet_hours_this_machine":
                        IMAGENET_45K_MACS_PER_IMAGE * a.imagenet_val_images / macs_per_s / 3600,
                    # projection: pure forward at the assumed GPU rate, times the per-subnet overhead ratio measured here
                    "projected_45k_imagenet_hours_8gpu":
                        IMAGENET_45K_MACS_PER_IMAGE * a.imagenet_val_images / (a.gpu_tmacs * 1e12) * ratio / 8 / 3600})
    print_table("summary", [summary], list(summary))
    write_json(a.out, {"env": environment(), "args": vars(a), "per_code": rows, "summary": summary})


if __name__ == "__main__":
    main()
