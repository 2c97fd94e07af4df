"""Predicted against measured latency of 20 random subnets, from a table built on this device.

  python benchmarks/latency_table.py --net fmnist28 --width-divisor 8 --batch 64 \
      --out benchmarks/results/latency_table.json

Builds a table (tools/latency.py; its fit subnets are other codes than the test ones), then measures 20
random codes of the space whole (median of 5 forwards each) and reports the relative error of the
prediction: median and worst.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import supernet  # noqa: E402,F401
from latency import NETS  # noqa: E402

from supernet.cli import ArgumentParser, entry_point, positive_int  # noqa: E402
from supernet.latency import build_table, measure_subnet, predict  # noqa: E402
from supernet.resnet import ResNet48  # noqa: E402
from supernet.runtime import atomic_write_json, setup, setup_logging  # noqa: E402
from supernet.space import WIDTH_DIVISORS, get_space, iter_sample, network  # noqa: E402


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--net", choices=NETS, default="fmnist28")
    p.add_argument("--width-divisor", type=int, choices=WIDTH_DIVISORS)
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--space", default="official45k")
    p.add_argument("--subnets", type=positive_int, default=20)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    setup_logging()
    setup("auto")
    cfg, space = network(a.net, a.width_divisor), get_space(a.space)
    table = build_table(space, cfg, a.batch, iter_sample(space, 10, seed=12345))
    rows = []
    for arch in iter_sample(space, a.subnets, seed=777):
        m = measure_subnet(ResNet48.from_code(arch, cfg), cfg, a.batch)
        pr = predict(table, arch, cfg)
        rows.append({"arch": arch.code, "measured_ms": round(m * 1000, 3), "predicted_ms": round(pr * 1000, 3),
                     "rel_error": round(abs(pr - m) / m, 4)})
    errs = [r["rel_error"] for r in rows]
    res = {"device": table["device"], "net": a.net, "width_divisor": cfg.width_divisor, "batch": a.batch,
           "space": a.space, "layers": len(table["layers"]), "median_rel_error": statistics.median(errs),
           "worst_rel_error": max(errs), "rows": rows}
    print(f"{len(rows)} subnets, {a.net} widths/{cfg.width_divisor}, batch {a.batch}, {table['device']}: "
          f"relative error median {100 * res['median_rel_error']:.1f} %, worst {100 * res['worst_rel_error']:.1f} %")
    atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
