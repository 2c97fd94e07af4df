"""Train the elastic ResNet48 supernet (run through train_supernet.sh, i.e. paddle.distributed.launch).

  python train_supernet.py -c configs/fmnist_sandwich.yaml -o train.epochs=2 [--resume]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
from supernet import checkpoint, fewshot
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_int
from supernet.config import ConfigError, load_config
from supernet.data import DataError
from supernet.outputs import FolderLock, OutputError
from supernet.runtime import setup
from supernet.train import Diverged
from supernet.supernet_train import fewshot_group_config, train_supernet

log = logging.getLogger("train_supernet")


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config (see configs/)")
    p.add_argument("-o", "--override", action="append", default=[], help="key=value, e.g. train.epochs=3")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"], help="auto, cpu or gpu")
    p.add_argument("--max_steps", type=positive_int, help="stop after this many steps (smoke tests)")
    p.add_argument("--check_only", action="store_true",
                   help="check the config and overrides, print the output folder, then exit")
    p.add_argument("--fewshot_groups", action="store_true", help="print the number of few-shot groups, then exit")
    p.add_argument("--fewshot_group", type=nonneg_int, help="train this few-shot group from the one-shot weights")
    p.add_argument("--fewshot_manifest", action="store_true",
                   help="write fewshot.json (the groups' weights, for eval_subnets.py --checkpoint)")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config, a.override)
        rules = fewshot.parse_rules(cfg["fewshot"]["split_on"])
        if a.fewshot_group is not None:
            cfg = fewshot_group_config(cfg, a.fewshot_group)
    except (ConfigError, ValueError) as e:
        return fail(str(e))
    if a.fewshot_groups:
        print(fewshot.n_groups(rules))
        return 0
    if a.fewshot_manifest:
        out = Path(cfg["train"]["output_dir"])
        ckpts = [fewshot.group_dir(out, g) / "supernet.pdparams" for g in range(fewshot.n_groups(rules))]
        missing = [str(c) for c in ckpts if not c.is_file()]
        if not rules or missing:
            return fail("fewshot.split_on is empty" if not rules else f"few-shot groups not trained: {missing}")
        print(fewshot.write_manifest(out, rules, ckpts))
        return 0
    if a.check_only:
        if not a.resume:
            try:
                checkpoint.check_start(Path(cfg["train"]["output_dir"]) / "checkpoints", "", resume=False)
            except checkpoint.CheckpointError as e:
                return fail(str(e))
        print(cfg["train"]["output_dir"])
        return 0
    ctx = setup(a.device, cfg["train"]["seed"])
    try:  # the folder is held for the whole run: a second run into it is refused, at every rank
        lock = FolderLock(cfg["train"]["output_dir"], f"train.r{ctx.rank}").acquire()
    except OutputError as e:
        return fail(str(e))
    try:
        train_supernet(cfg, ctx, resume=a.resume, max_steps=a.max_steps)
    except Diverged as e:
        log.error("%s; no final weights are written", e)
        return 1
    except (DataError, ValueError) as e:
        return fail(str(e))
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
