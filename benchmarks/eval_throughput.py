"""Scoring throughput on the proxy: time per subnet (extract + BN recalibration + evaluation, as
eval_subnets.py does it) against the standalone model's pure forward time over the same images,
for codes spread over the official list by MACs; subnets per hour; and the projected time for all
45k codes on ImageNet val from the measured MACs/s and the MAC totals of SEARCH_SPACE.md.

  python benchmarks/eval_throughput.py [--val-images 10000] [--calib-batches 4] [--codes 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import FMNIST28, OFFICIAL_SPACE, environment, print_table, write_json

import paddle

from supernet.config import load_config
from supernet.evaluate import EvalData, PredictorBackend, ScoreSettings, score
from supernet.resnet import SuperNet
from supernet.space import count_cost, iter_sample

IMAGENET_45K_MACS_PER_IMAGE = 1.337e14  # sum over the 45k codes at 224x224 (SEARCH_SPACE.md: ~1.34e5 GMACs)
IMAGENET_VAL = 50_000


def predictor_runner(sub, data):
    """Pure forward through Paddle Inference + oneDNN, predictor created outside the timing."""
    run = PredictorBackend(data.input_shape).load(sub)
    batches = [np.ascontiguousarray(np.asarray(x), dtype=np.float32) for x, _ in data.val]
    return lambda: [run(x) for x in batches][-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--val-images", type=int, default=10000)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--calib-batch-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--codes", type=int, default=8)
    p.add_argument("--backend", choices=["dygraph", "predictor"], default="predictor")
    p.add_argument("--out", default="benchmarks/results/eval_throughput.json")
    a = p.parse_args()
    cfg = load_config(None)
    s = ScoreSettings(a.val_images, a.calib_batches, a.calib_batch_size, a.batch_size, 0, a.backend)
    t = time.perf_counter()
    data = EvalData(cfg, s)
    cache_s = time.perf_counter() - t
    paddle.seed(0)
    sn = SuperNet(FMNIST28)
    sn.eval()
    archs = sorted(iter_sample(OFFICIAL_SPACE, 200, seed=1), key=lambda x: count_cost(x, FMNIST28).macs)
    archs = [archs[round(i * (len(archs) - 1) / (a.codes - 1))] for i in range(a.codes)]
    tensors = [(paddle.to_tensor(np.asarray(x)), y) for x, y in data.val]
    rows = []
    tot_score = tot_fwd = tot_macs = tot_pfwd = 0.0
    for arch in archs:
        sub = sn.extract(arch)
        sub.eval()

        @paddle.no_grad()
        def forward_only():
            for x, _ in tensors:
                out = sub(x)
            return float(out[0, 0])

        forward_only()  # warm-up
        t = time.perf_counter()
        forward_only()
        fwd = time.perf_counter() - t
        run_pred = predictor_runner(sub, data)
        run_pred()  # warm-up
        t = time.perf_counter()
        run_pred()
        pfwd = time.perf_counter() - t
        t = time.perf_counter()
        acc = score(sn, arch, data)
        sc = time.perf_counter() - t
        macs = count_cost(arch, FMNIST28).macs
        rows.append({"MMACs": macs / 1e6, "dygraph_fwd_s": fwd, "predictor_fwd_s": pfwd, "score_s": sc,
                     "ratio_vs_dygraph": sc / fwd, "ratio_vs_predictor": sc / pfwd, "acc": acc.top1})
        tot_score, tot_fwd, tot_pfwd = tot_score + sc, tot_fwd + fwd, tot_pfwd + pfwd
        tot_macs += macs * data.n_val
    print_table(f"per subnet: score (extract + {a.calib_batches}x{a.calib_batch_size} calibration + "
                f"{data.n_val} images, {a.backend}) vs the standalone model's pure forward over the same images",
                rows, list(rows[0]))
    macs_per_s = tot_macs / tot_score  # effective, everything included
    summary = {
        "val_images": data.n_val, "calib_batches": a.calib_batches, "calib_batch_size": a.calib_batch_size,
        "backend": a.backend, "cache_seconds": cache_s, "ratio_vs_dygraph_fwd": tot_score / tot_fwd,
        "ratio_vs_predictor_fwd": tot_score / tot_pfwd, "subnets_per_hour": 3600 * len(rows) / tot_score,
        "effective_GMACs_per_s": macs_per_s / 1e9,
        "projected_45k_imagenet_val_hours_this_machine": IMAGENET_45K_MACS_PER_IMAGE * IMAGENET_VAL / macs_per_s / 3600,
    }
    print_table("summary", [summary], list(summary))
    write_json(a.out, {"env": environment(), "per_code": rows, "summary": summary})


if __name__ == "__main__":
    main()
