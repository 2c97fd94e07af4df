"""Train the elastic ResNet48 supernet (run through train_supernet.sh, i.e. paddle.distributed.launch).

  python train_supernet.py -c configs/fmnist_sandwich.yaml -o train.epochs=2 [--resume]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
from supernet import checkpoint
from supernet.cli import ArgumentParser, fail, positive_int
from supernet.config import ConfigError, load_config
from supernet.data import DataError
from supernet.runtime import setup
from supernet.supernet_train import train_supernet

log = logging.getLogger("train_supernet")


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config (see configs/)")
    p.add_argument("-o", "--override", action="append", default=[], help="key=value, e.g. train.epochs=3")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"], help="auto, cpu or gpu")
    p.add_argument("--max_steps", type=positive_int, help="stop after this many steps (smoke tests)")
    p.add_argument("--check_only", action="store_true", help="check the config and overrides, then exit")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config, a.override)
    except ConfigError as e:
        return fail(str(e))
    if a.check_only:
        if not a.resume:
            try:
                checkpoint.check_start(Path(cfg["train"]["output_dir"]) / "checkpoints", "", resume=False)
            except checkpoint.CheckpointError as e:
                return fail(str(e))
        return 0
    ctx = setup(a.device, cfg["train"]["seed"])
    try:
        train_supernet(cfg, ctx, resume=a.resume, max_steps=a.max_steps)
    except (DataError, ValueError) as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
