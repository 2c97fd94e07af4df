"""Latency tables of this device: measure every layer a search space can produce, predict any subnet.

  python tools/latency.py build --net imagenet --batch 1 --out output/latency/imagenet_b1.json
  python tools/latency.py build --net fmnist28 --width-divisor 8 --batch 64 --out output/latency/proxy_b64.json
  python tools/latency.py predict --table output/latency/imagenet_b1.json 1322221222220000122200000024540000000000005525000000

The table (supernet/latency.py) holds each layer's time on the current device (CPU here, the GPU where
there is one) at one batch size and input size, plus a per-block and a fixed cost fitted on a few whole
subnets; predictions for a code are sums over its layers. tools/search.py --max-latency-ms uses it, or
measures each candidate directly (--latency measure).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401

from supernet.cli import ArgumentParser, entry_point, fail, positive_int  # noqa: E402
from supernet.latency import build_table, predict, table_mismatch  # noqa: E402
from supernet.outputs import overwrite_problem  # noqa: E402
from supernet.runtime import atomic_write_json, setup, setup_logging  # noqa: E402
from supernet.space import (WIDTH_DIVISORS, ArchCodeError, get_space, iter_sample, network,  # noqa: E402
                            parse_code)

NETS = ("imagenet", "fmnist28")  # names of supernet.space.NETWORKS a table is built for


def load_table(path: str) -> dict:
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(table, dict) or "layers" not in table:
            raise ValueError("no 'layers'")
        return table
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"--table {path}: not a latency table of tools/latency.py ({e})") from None


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="measure a table on this device")
    b.add_argument("--net", choices=NETS, default="imagenet")
    b.add_argument("--width-divisor", type=int, choices=WIDTH_DIVISORS)
    b.add_argument("--batch", type=positive_int, default=1)
    b.add_argument("--space", default="full", help="the codes the table must cover (full or official45k)")
    b.add_argument("--fit-subnets", type=positive_int, default=10, help="whole subnets measured for the fitted costs")
    b.add_argument("--repeats", type=positive_int, default=5)
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    b.add_argument("--out", required=True)
    q = sub.add_parser("predict", help="predicted latency of codes from a table")
    q.add_argument("--table", required=True)
    q.add_argument("codes", nargs="+")
    a = p.parse_args(argv)
    setup_logging()
    if a.cmd == "build":
        problem = overwrite_problem([a.out], [], "--out")
        if problem:
            return fail(problem)
        try:
            space = get_space(a.space)
        except ValueError as e:
            return fail(f"--space: {e}")
        setup(a.device)
        from tqdm import tqdm

        cfg = network(a.net, a.width_divisor)
        table = build_table(space, cfg, a.batch, iter_sample(space, a.fit_subnets, seed=12345), a.repeats,
                            progress=lambda xs: tqdm(xs, desc="layers"))
        table.update(net=a.net, space=a.space)
        atomic_write_json(a.out, table)
        print(f"{len(table['layers'])} layers measured on {table['device']} (batch {a.batch}); "
              f"fitted: {table['per_block_s'] * 1000:.3f} ms per block, {table['base_s'] * 1000:.3f} ms fixed; {a.out}")
        return 0
    try:
        table = load_table(a.table)
        cfg = network(table["net"], table["width_divisor"])
        problem = table_mismatch(table, cfg, table["batch"])
        if problem:
            return fail(problem)
        for code in a.codes:
            print(f"{parse_code(code).code} {predict(table, parse_code(code), cfg) * 1000:.3f} ms")
    except (ValueError, ArchCodeError, KeyError) as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
