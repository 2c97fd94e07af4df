"""Zen-Score with residual links removed (the paper's Algorithm 1) vs kept, ranked against a ground truth.

  python benchmarks/zen_residual.py --gt benchmarks/gt/d8e2.json --out benchmarks/results/zen_residual.json

Each code's standalone network at widths / 8 on the proxy's 28x28 input, Gaussian-initialised with one
seed, scored both ways; Kendall tau against the GT's seed-adjusted mean top-1, overall and over
equal-depth pairs, with a paired bootstrap of the difference.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401
import paddle  # noqa: E402
from tqdm import tqdm  # noqa: E402

from supernet.cli import ArgumentParser, entry_point, fail  # noqa: E402
from supernet.archfile import ArchFileError  # noqa: E402
from supernet.groundtruth import gt_scores, network_of  # noqa: E402
from supernet.metrics import bootstrap_tau_diff, kendall_tau_b, kendall_within  # noqa: E402
from supernet.resnet import ResNet48  # noqa: E402
from supernet.runtime import atomic_write_json, setup_logging  # noqa: E402
from supernet.space import FMNIST28, parse_code  # noqa: E402
from supernet.zero_cost import gaussian_init, zen_score  # noqa: E402


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--gt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args(argv)
    setup_logging()
    try:
        gt = gt_scores(a.gt)
        cfg = network_of(a.gt, FMNIST28)
    except ArchFileError as e:
        return fail(str(e))
    codes = list(gt)
    vals: dict[str, list[float]] = {"paper": [], "residual": []}
    for c in tqdm(codes, desc="codes"):
        for variant in vals:
            paddle.seed(0)
            m = ResNet48.from_code(parse_code(c), cfg)
            gaussian_init(m, 0)
            vals[variant].append(zen_score(m, m.forward_features, [a.batch_size, cfg.in_channels, cfg.input_size,
                                                                   cfg.input_size], 1000, residual=variant == "residual"))
    g = [gt[c] for c in codes]
    depth = [float(parse_code(c).depth) for c in codes]
    res = {"gt": a.gt, "codes": len(codes), "network": {"width_divisor": cfg.width_divisor},
           **{v: {"kendall": kendall_tau_b(x, g), "kendall_equal_depth": kendall_within(x, g, depth)[0]}
              for v, x in vals.items()},
           "paper_minus_residual": bootstrap_tau_diff(vals["paper"], vals["residual"], g)}
    print(f"{'Zen-Score':<22} {'kendall':>8} {'equal-depth':>12}")
    for v in vals:
        print(f"{v:<22} {res[v]['kendall']:>8.3f} {res[v]['kendall_equal_depth']:>12.3f}")
    d = res["paper_minus_residual"]
    print(f"paper minus residual: {d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")
    atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
