"""Train the elastic ResNet48 supernet (run through train_supernet.sh, i.e. paddle.distributed.launch).

  python train_supernet.py -c configs/fmnist_sandwich.yaml -o train.epochs=2 [--resume]
"""
from __future__ import annotations

import argparse
import logging
import sys

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
from supernet.config import ConfigError, load_config
from supernet.data import DataError
from supernet.runtime import setup
from supernet.supernet_train import train_supernet

log = logging.getLogger("train_supernet")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config (see configs/)")
    p.add_argument("-o", "--override", action="append", default=[], help="key=value, e.g. train.epochs=3")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    p.add_argument("--device", default="auto", help="auto, cpu or gpu")
    p.add_argument("--max_steps", type=int, help="stop after this many steps (smoke tests)")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config, a.override)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ctx = setup(a.device, cfg["train"]["seed"])
    try:
        train_supernet(cfg, ctx, resume=a.resume, max_steps=a.max_steps)
    except (DataError, ValueError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
