"""How many evaluation images and calibration batches does ranking need? Kendall tau of a supernet's
scores against a ground-truth file for every (evaluation-set size N, calibration batches K), with the
paired bootstrap interval against the largest setting, and the cost per subnet of each.

Two views: against the ground truth (what matters, but its noise hides small losses), and
self-consistency over --sample codes of the official list: Kendall tau between each setting's scores
and the largest setting's (no ground-truth noise: how much the evaluation's own sampling reorders
codes; 1.0 = nothing lost).

Every code is calibrated with K = each of --calib (the first K of the same fixed 128-image
batches) and evaluated once on all test images through the fused engine; size N uses the first N
images of one fixed random order of the test set, so the settings are nested and paired.

  python benchmarks/eval_size.py --checkpoint output/proxy/supernet/supernet.pdparams \
      --gt benchmarks/gt/d8e2.json --sizes 500,1000,2000,5000,10000 --calib 1,2,4,8
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import environment, print_table, write_json

from supernet import archfile, groundtruth
from supernet.bn_calib import calibration_set
from supernet.evaluate import config_loaders, load_supernet
from supernet.fused import FusedEngine, layout
from supernet.metrics import bootstrap_tau_diff, kendall_tau_b, pearson
from supernet.space import OFFICIAL_SPACE, channel_plan, iter_sample, parse_code
from supernet.supernet_train import net_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--gt", default=str(groundtruth.DEV_GT))
    p.add_argument("--sizes", default="500,1000,2000,5000,10000")
    p.add_argument("--calib", default="1,2,4,8")
    p.add_argument("--calib-batch-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=100, help="codes of the official list for self-consistency")
    p.add_argument("--out", default="benchmarks/results/eval_size.json")
    a = p.parse_args()
    sizes, ks = [int(v) for v in a.sizes.split(",")], [int(v) for v in a.calib.split(",")]
    model, cfg = load_supernet(a.checkpoint)
    net = net_config(cfg["model"])
    problem = groundtruth.supernet_mismatch(a.gt, net.width_divisor, net.input_size, cfg["model"]["dataset"])
    if problem:
        raise SystemExit(f"error: {problem}")
    gt = {k: (parse_code(v["arch"]), float(v["acc"])) for k, v in archfile.read_entries(a.gt).items()}
    pool = sorted(iter_sample(OFFICIAL_SPACE, a.sample, seed=a.seed + 1), key=lambda x: x.code) if a.sample else []
    extra = {f"sample{i}": (x, float("nan")) for i, x in enumerate(pool)}
    train, val = config_loaders(cfg, a.batch_size, a.seed, None)
    calib = [c.numpy() for c in calibration_set(train, max(ks), a.calib_batch_size, a.seed)]
    xs, ys = zip(*[(np.ascontiguousarray(x, np.float32), np.asarray(y)) for x, y in val.epoch(0)])
    y_all = np.concatenate(ys)
    order = np.random.default_rng(a.seed).permutation(len(y_all))
    sizes = [n for n in sizes if n <= len(y_all)]
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    engine = FusedEngine()
    per: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}  # K -> key -> (correct, nll) per image
    cost = {k: {"prepare_s": 0.0, "forward_s": 0.0} for k in ks}
    from tqdm import tqdm

    for k in ks:
        per[k] = {}
        for key, (arch, _) in tqdm({**gt, **extra}.items(), desc=f"K={k}"):
            lay = layout(channel_plan(model.set_active(arch), net), net)
            t = time.perf_counter()
            prep = engine.prepare(lay, state, calib[:k])
            t1 = time.perf_counter()
            logits = np.concatenate(engine.forward(prep, xs)).astype(np.float64)
            t2 = time.perf_counter()
            cost[k]["prepare_s"] += t1 - t
            cost[k]["forward_s"] += t2 - t1
            z = logits - logits.max(axis=1, keepdims=True)
            nll = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y_all)), y_all]
            per[k][key] = ((logits.argmax(axis=1) == y_all)[order], nll[order])
    keys = list(gt)
    truth = [gt[k][1] for k in keys]
    ref_k, ref_n = max(ks), max(sizes)

    def scores(k: int, n: int, by: str, which: list[str] | None = None) -> list[float]:
        return [float(per[k][c][0][:n].mean()) if by == "top1" else -float(per[k][c][1][:n].mean())
                for c in (which or keys)]

    sample_keys = list(extra)

    rows = []
    for by in ("loss", "top1"):
        ref = scores(ref_k, ref_n, "loss")
        for k in ks:
            for n in sizes:
                s = scores(k, n, by)
                bt = bootstrap_tau_diff(s, ref, truth)
                c = cost[k]
                sec = (c["prepare_s"] + c["forward_s"] * n / len(y_all)) / (len(keys) + len(sample_keys))
                self_tau = (kendall_tau_b(scores(k, n, by, sample_keys), scores(ref_k, ref_n, by, sample_keys))
                            if sample_keys else None)
                rows.append({"rank_by": by, "K": k, "images": n, "kendall": kendall_tau_b(s, truth),
                             "pearson": pearson(s, truth), "vs_ref": bt["diff"],
                             "ci95": f"[{bt['lo']:+.3f}, {bt['hi']:+.3f}]", "self_tau": self_tau,
                             "s_per_subnet": sec})
    print_table(f"{len(keys)} codes of {Path(a.gt).name}; vs_ref: tau minus tau at K={ref_k}, {ref_n} images, by loss "
                f"(paired bootstrap over codes); self_tau: over {len(sample_keys)} official codes, tau with the same ranking's "
                "reference setting; s_per_subnet: calibration + preparation measured, forward scaled "
                "from all images", rows, list(rows[0]))
    write_json(a.out, {"env": environment(), "args": vars(a), "codes": len(keys), "rows": rows,
                       "cost": {str(k): v for k, v in cost.items()}})


if __name__ == "__main__":
    main()
