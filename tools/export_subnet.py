"""Export one code's standalone model from a supernet checkpoint.

  python tools/export_subnet.py --checkpoint output/supernet_fmnist/supernet.pdparams \
      --code 1358412111310000113121213112224212524232226676367600 --out exported/arch870

Writes <out>.pdparams (official parameter names; loads into ResNet48.from_code), with
paddle.jit.save <out>.pdmodel/.json + <out>.pdiparams (a small standalone inference model), and
<out>.subnet.yaml (the code, network and source checkpoint; not .json, which paddle.jit.load would
take for a program file). BN statistics are recalibrated for the
subnet first (--calib-batches 0 keeps the supernet's). Existing files under the prefix are replaced
only when they are an earlier export (its .subnet.json is there); anything else is refused.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401
import paddle  # noqa: E402
import yaml  # noqa: E402

from supernet.bn_calib import calibration_set, recalibrate  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_int  # noqa: E402
from supernet.outputs import overwrite_problem  # noqa: E402
from supernet.data import DataError  # noqa: E402
from supernet.evaluate import config_loaders, load_scorer  # noqa: E402
from supernet.runtime import atomic_write_bytes, setup_logging  # noqa: E402
from supernet.space import ArchCodeError, parse_code  # noqa: E402
from supernet.supernet_train import net_config  # noqa: E402

log = logging.getLogger("export_subnet")


OUT_SUFFIXES = (".pdparams", ".pdiparams", ".pdmodel", ".json", ".pdiparams.info", ".subnet.yaml")
RECORD = ".subnet.yaml"  # written first: its presence marks the prefix's files as an export's


def output_problem(out: str, inputs: list[str | None]) -> str | None:
    """Why the files written under prefix ``out`` would be unsafe: one of them is an input (the
    checkpoint, its config, a few-shot manifest's group weights), a file that no export wrote, or
    cannot be written."""
    if out.endswith(("/", "\\")) or Path(out).is_dir():
        return f"--out {out} is a folder; give a path prefix such as {out.rstrip('/')}/arch1"
    ckpt = Path(inputs[0])
    given = [*inputs, ckpt.with_suffix(".yaml"), ckpt.parent / "config.yaml"]
    if ckpt.parent.is_dir():
        given += [p for p in ckpt.parent.rglob("*.pdparams")]  # a few-shot folder's group weights
    targets = [Path(out + suffix) for suffix in OUT_SUFFIXES]
    problem = overwrite_problem(targets, given, "--out")
    if problem:
        return problem
    if not Path(out + RECORD).is_file():
        taken = [t for t in targets if t.exists()]
        if taken:
            return (f"--out {out}: {taken[0]} exists and is not an earlier export (no {Path(out).name}{RECORD}); "
                    "choose another prefix")
    return None


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config")
    p.add_argument("--code", required=True)
    p.add_argument("--out", required=True, help="path prefix of the exported files")
    p.add_argument("--calib-batches", type=nonneg_int, default=4)
    p.add_argument("--calib-batch-size", type=positive_int, default=128)
    p.add_argument("--seed", type=nonneg_int, default=0)
    a = p.parse_args(argv)
    setup_logging()
    problem = output_problem(a.out, [a.checkpoint, a.config])
    if problem:
        return fail(problem)
    try:
        arch = parse_code(a.code)
        router, cfg, _ = load_scorer(a.checkpoint, a.config)  # a few-shot fewshot.json routes to the code's group
        sub = router(arch).extract(arch)
        if a.calib_batches:
            train, _ = config_loaders(cfg, a.calib_batch_size, a.seed)
            recalibrate(sub, calibration_set(train, a.calib_batches, a.calib_batch_size, a.seed))
    except (ArchCodeError, FileNotFoundError, ValueError, DataError) as e:
        return fail(str(e))
    sub.eval()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nc = net_config(cfg["model"])
    # the record first: it marks the prefix's files as an export's, so a killed export can be redone
    atomic_write_bytes(a.out + RECORD, yaml.safe_dump({"arch": arch.code, "checkpoint": str(a.checkpoint),
                                        "network": {"dataset": cfg["model"]["dataset"], "width_divisor": nc.width_divisor,
                                                    "input_size": nc.input_size},
                                        "calib_batches": a.calib_batches, "calib_batch_size": a.calib_batch_size,
                                        "seed": a.seed}, sort_keys=False).encode())
    paddle.save(sub.state_dict(), str(out) + ".pdparams")
    spec = [paddle.static.InputSpec([None, nc.in_channels, nc.input_size, nc.input_size], "float32", "image")]
    paddle.jit.save(sub, str(out), input_spec=spec)
    log.info("exported %s: %s.pdparams (official names) and the paddle.jit model %s.*", arch.code, out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
