"""Decode an arch code: per-block widths, strides, shortcut kind, parameters and MACs.

  python tools/decode_arch.py 1348311131310000332323230014143424241434543757770000
  python tools/decode_arch.py CODE --json --input-size 28 --in-channels 1 --num-classes 10 --width-divisor 8 --stem small
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet.cli import ArgumentParser, entry_point, fail, positive_int  # noqa: E402
from supernet.space import WIDTH_DIVISORS, ArchCodeError, NetConfig, channel_plan, count_cost, parse_code, tied_violation  # noqa: E402


def describe(code: str, cfg: NetConfig) -> dict:
    arch = parse_code(code)
    plan = channel_plan(arch, cfg)
    cost = count_cost(arch, cfg)
    return {
        "code": arch.code,
        "depths": list(arch.depths),
        "stem": plan.stem,
        "blocks": [{"index": b.index, "stage": b.stage + 1, "in": b.in_ch, "conv1": b.mid, "conv2": b.out,
                    "stride": b.stride, "shortcut": "projection" if b.projection else "identity"}
                   for b in plan.blocks],
        "params": cost.params,
        "macs": cost.macs,
        "tied": arch.is_tied,
        "config": {"input_size": cfg.input_size, "in_channels": cfg.in_channels, "num_classes": cfg.num_classes,
                   "width_divisor": cfg.width_divisor, "stem": cfg.stem},
    }


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("code")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--input-size", type=positive_int, default=224)
    p.add_argument("--in-channels", type=positive_int, default=3)
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--width-divisor", type=int, choices=WIDTH_DIVISORS, default=1)
    p.add_argument("--stem", choices=["imagenet", "small"], default="imagenet")
    a = p.parse_args(argv)
    cfg = NetConfig(a.in_channels, a.num_classes, a.width_divisor, a.stem, a.input_size)
    try:
        d = describe(a.code, cfg)
    except ArchCodeError as e:
        return fail(str(e))
    if a.json:
        print(json.dumps(d))
        return 0
    print(f"code    {d['code']}")
    print(f"depths  {d['depths']}   stem width {d['stem']}   "
          f"{'tied (runs on the supernet)' if d['tied'] else 'untied: ' + tied_violation(parse_code(a.code))}")
    print(f"{'block':>5} {'stage':>5} {'in':>5} {'conv1':>5} {'conv2':>5} {'stride':>6}  shortcut")
    for b in d["blocks"]:
        print(f"{b['index']:>5} {b['stage']:>5} {b['in']:>5} {b['conv1']:>5} {b['conv2']:>5} {b['stride']:>6}  "
              f"{b['shortcut']}")
    print(f"params  {d['params']:,} ({d['params'] / 1e6:.2f} M)")
    print(f"MACs    {d['macs']:,} ({d['macs'] / 1e9:.3f} G) at {cfg.input_size}x{cfg.input_size}x{cfg.in_channels}, "
          f"{cfg.num_classes} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
