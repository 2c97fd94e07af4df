"""Every entry point refuses bad input the same way: exit 2, one line naming the file or option and
the rule broken, no traceback, and every file that existed before left as it was.

The table runs each entry point's ``main`` in-process (fast); a few cases also run as real commands.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import ROOT, run_env, write_idx

sys.path.insert(0, str(ROOT / "tools"))
import arch_files  # noqa: E402
import blend  # noqa: E402
import decode_arch  # noqa: E402
import export_subnet  # noqa: E402
import gt_campaign  # noqa: E402
import rank_corr  # noqa: E402
import report  # noqa: E402
import zero_cost as zero_cost_tool  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import gt_power  # noqa: E402
import ranking  # noqa: E402
import zc_run  # noqa: E402

import eval_subnets  # noqa: E402
import pretrain  # noqa: E402
import run_proxy  # noqa: E402
import train_supernet  # noqa: E402
from supernet.config import load_config  # noqa: E402
from supernet.resnet import SuperNet  # noqa: E402
from supernet.space import FMNIST28, OFFICIAL_SPACE, iter_sample  # noqa: E402
from supernet.supernet_train import save_supernet  # noqa: E402

CODES = [a.code for a in iter_sample(OFFICIAL_SPACE, 4, seed=11)]
UNTIED = "1" + "2" * 4 + "1" + "12" * 2 + "00" * 3 + "13" * 2 + "00" * 3 + "11" * 2 + "00" * 6 + "11" * 2 + "00" * 3
V2_PROTOCOL = {"dataset": "fmnist", "width_divisor": 4, "input_size": 28, "max_epoch": 12, "warmup": 1.0,
               "lr": 0.05, "batch_size": 256, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
               "label_smoothing": 0.0, "train_images": None, "val_images": None, "init": None}


def official(pairs, acc=None) -> str:
    return json.dumps({k: {"arch": c, **({} if acc is None else {"acc": acc})} for k, c in pairs})


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Good inputs (arch file, scores, a tiny supernet, tiny data) and one bad file per rule."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    (d / "fmnist").mkdir()
    for prefix, n in (("train", 64), ("t10k", 40)):
        write_idx(d / "fmnist" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(d / "fmnist" / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    cfg = load_config(ROOT / "configs" / "fmnist_sandwich.yaml", [f"data.data_dir={d / 'fmnist'}"])
    paddle.seed(0)
    net = SuperNet(FMNIST28)
    save_supernet(net, cfg, d / "supernet.pdparams")
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    first = next(k for k in state if k.endswith("weight"))
    state[first] = state[first] * np.nan
    (d / "nan").mkdir()
    paddle.save(state, str(d / "nan" / "supernet.pdparams"))
    (d / "nan" / "supernet.yaml").write_text((d / "supernet.yaml").read_text())
    paddle.save({"fc.weight": np.zeros((3, 3), np.float32)}, str(d / "other_model.pdparams"))

    w = lambda name, text: (d / name).write_text(text)  # noqa: E731
    pairs = [(f"arch{i + 1}", c) for i, c in enumerate(CODES)]
    w("archs.json", official(pairs))
    w("scores.json", json.dumps({k: {"arch": c, "acc": 90.0 + i} for i, (k, c) in enumerate(pairs)}))
    w("gt.json", json.dumps({k: {"arch": c, "acc": 91.0 - i} for i, (k, c) in enumerate(pairs)}))
    w("dup_keys.json", '{"arch1": {"arch": "%s", "acc": 1}, "arch1": {"arch": "%s", "acc": 2}}' % (CODES[0], CODES[1]))
    w("nan_acc.json", '{"arch1": {"arch": "%s", "acc": NaN}, "arch2": {"arch": "%s", "acc": 2}}' % (CODES[0], CODES[1]))
    w("bool_acc.json", json.dumps({"arch1": {"arch": CODES[0], "acc": True}, "arch2": {"arch": CODES[1], "acc": 2}}))
    w("str_acc.json", json.dumps({"arch1": {"arch": CODES[0], "acc": "high"}, "arch2": {"arch": CODES[1], "acc": 2}}))
    w("same_code.json", json.dumps({"a": {"arch": CODES[0], "acc": 1}, "b": {"arch": CODES[0], "acc": 2},
                                    "c": {"arch": CODES[1], "acc": 3}}))
    w("list.json", json.dumps([CODES[0]]))
    w("empty.json", "{}")
    w("two_forms.json", official([("arch1", CODES[0]), ("arch2", CODES[0][1:]), ("arch3", CODES[1])]))
    w("cfg_empty_sandwich.yaml", f"base: {ROOT / 'configs' / 'fmnist_quick.yaml'}\nsandwich:\n  largest: false\n"
                                 "  smallest: false\n  num_random: 0\n")
    (d / "zc").mkdir()
    (d / "zc" / "params.json").write_text(official(pairs, acc=1.0))
    w("broken.json", '{"arch1": {"arch": ')
    (d / "latin1.json").write_bytes(b'{"arch1": {"arch": "\xe9"}}')
    w("untied.json", official([("arch1", UNTIED)]))
    w("other_codes.json", official([(k, c) for (k, _), c in zip(pairs, reversed(CODES))], acc=1.0))
    w("long_code.txt", "1" * 100_000 + "\n")
    # a ground truth of another protocol (divisor 8), with a prediction file whose record says divisor 4
    w("gt_d8.json", (d / "gt.json").read_text())
    w("gt_d8.protocol.json", json.dumps({**V2_PROTOCOL, "width_divisor": 8, "max_epoch": 4}))
    w("pred4.json", (d / "scores.json").read_text())
    w("pred4.meta.json", json.dumps({"network": {"dataset": "fmnist", "width_divisor": 4, "input_size": 28}}))
    w("pred8.json", (d / "scores.json").read_text())
    w("pred8.meta.json", json.dumps({"network": {"dataset": "fmnist", "width_divisor": 8, "input_size": 28}}))
    w("gt_v2.json", json.dumps({"arch1": {"arch": CODES[1], "acc": 90.0, "per_seed": {"0": 90.0}}}))
    w("gt_v2.protocol.json", json.dumps(V2_PROTOCOL))
    # an eval output folder holding another arch set's submission, one holding a garbage journal
    (d / "eval_other").mkdir()
    (d / "eval_other" / "submission.json").write_text(official(pairs[:2], acc=50.0))
    (d / "eval_garbage").mkdir()
    (d / "eval_garbage" / "journal.s0of1.r0.jsonl").write_text("this is not json\n")
    # checkpoint folders: another run's, and one of a run with other settings (for --resume)
    for name, fp in (("run_other", "0123456789abcdef"),):
        ck = d / name / "checkpoints"
        ck.mkdir(parents=True)
        (ck / "ckpt_s000000100.pdckpt").write_bytes(b"x")
        (ck / "ckpt_s000000100.json").write_text(json.dumps({"step": 100, "fingerprint": fp, "sha256": "0"}))
        (d / name / "args.json").write_text('{"run": "the earlier one"}\n')  # must survive a refused start
        (d / name / "config.yaml").write_text("train:\n  epochs: 7\n")
    # configs
    w("cfg_latin1.yaml", "")
    (d / "cfg_latin1.yaml").write_bytes(b"train:\n  lr: \xe9\n")
    w("cfg_self.yaml", "base: cfg_self.yaml\n")
    w("cfg_list.yaml", "- 1\n- 2\n")
    w("cfg_zero_epochs.yaml", f"base: {ROOT / 'configs' / 'fmnist_quick.yaml'}\ntrain:\n  epochs: 0\n")
    # ImageNet layout whose every image is corrupt
    for split in ("train", "val"):
        for c in ("a", "b"):
            folder = d / "imnet" / split / c
            folder.mkdir(parents=True)
            for i in range(4):
                (folder / f"{i}.jpg").write_bytes(b"not a jpeg")
    return d


P = "{d}"
SMALL = "1222233333000000333300000055550000000000007777000000"
TINY = ["--data_dir", f"{P}/fmnist", "--batch_size", "16", "--max_epoch", "1"]
CASES = [
    # id, entry point, argv ("{d}" is the fixture folder), what the error line must say
    ("decode-short", decode_arch.main, ["12345"], "wrong length 5"),
    ("decode-nondigit", decode_arch.main, ["1" * 51 + "x"], "non-digit"),
    ("decode-divisor", decode_arch.main, [CODES[0], "--width-divisor", "3"], "--width-divisor"),
    ("decode-input-size", decode_arch.main, [CODES[0], "--input-size", "0"], "--input-size"),
    ("decode-huge-code", decode_arch.main, ["1" * 100_000], "100000 characters"),
    ("rank-dup-keys", rank_corr.main, [f"{P}/dup_keys.json", f"{P}/gt.json"], "appears twice"),
    ("rank-nan", rank_corr.main, [f"{P}/nan_acc.json", f"{P}/gt.json"], "not a finite number"),
    ("rank-bool", rank_corr.main, [f"{P}/bool_acc.json", f"{P}/gt.json"], "not a finite number"),
    ("rank-str", rank_corr.main, [f"{P}/scores.json", f"{P}/str_acc.json"], "not a finite number"),
    ("rank-same-code", rank_corr.main, [f"{P}/same_code.json", f"{P}/gt.json"], "hold the same code"),
    ("rank-latin1", rank_corr.main, [f"{P}/latin1.json", f"{P}/gt.json"], "not UTF-8"),
    ("rank-missing", rank_corr.main, [f"{P}/nope.json", f"{P}/gt.json"], "does not exist"),
    ("rank-list", rank_corr.main, [f"{P}/list.json", f"{P}/gt.json"], "expected a JSON object"),
    ("rank-broken", rank_corr.main, [f"{P}/broken.json", f"{P}/gt.json"], "not valid JSON"),
    ("rank-long-code", rank_corr.main, [f"{P}/long_code.txt", f"{P}/gt.json"], "100000 characters"),
    ("rank-plot-path", rank_corr.main, [f"{P}/scores.json", f"{P}/gt.json", "--plot", f"{P}/gt.json/x.png"],
     "--plot"),
    ("rank-ce-missing", rank_corr.main, [f"{P}/scores.json", f"{P}/gt.json", "--gt-metric", "ce"],
     "no finite per_seed_ce"),
    ("rank-exclude-missing", rank_corr.main, [f"{P}/scores.json", f"{P}/gt.json", "--exclude", f"{P}/nope.json"],
     "does not exist"),
    ("rank-exclude-broken", rank_corr.main, [f"{P}/scores.json", f"{P}/gt.json", "--exclude", f"{P}/broken.json"],
     "not valid JSON"),
    ("rank-other-network", rank_corr.main, [f"{P}/pred4.json", f"{P}/gt_d8.json"], "width_divisor 4 vs 8"),
    ("files-split-zero", arch_files.main, ["split", f"{P}/archs.json", "0", f"{P}/parts"], "must be >= 1"),
    ("files-merge-into-input", arch_files.main, ["merge", f"{P}/scores.json", f"{P}/scores.json"], "also an input"),
    ("files-merge-other-codes", arch_files.main,
     ["merge", f"{P}/merged.json", f"{P}/other_codes.json", "--order", f"{P}/archs.json"], "holds code"),
    ("files-merge-nan", arch_files.main, ["merge", f"{P}/merged.json", f"{P}/nan_acc.json"], "not a finite number"),
    ("files-sample-negative", arch_files.main, ["sample", "-n", "-3", "-o", f"{P}/s.json"], "-n"),
    ("files-sample-out-dir", arch_files.main, ["sample", "-n", "3", "-o", f"{P}/fmnist"], "is a folder"),
    ("export-over-input", export_subnet.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--code", CODES[0], "--out", f"{P}/supernet"], "would overwrite"),
    ("export-bad-code", export_subnet.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--code", "99", "--out", f"{P}/exp/a"], "wrong length"),
    ("export-nan-weights", export_subnet.main,
     ["--checkpoint", f"{P}/nan/supernet.pdparams", "--code", CODES[0], "--out", f"{P}/exp/b"], "non-finite"),
    ("export-other-model", export_subnet.main,
     ["--checkpoint", f"{P}/other_model.pdparams", "--config", f"{P}/supernet.yaml", "--code", CODES[0],
      "--out", f"{P}/exp/c"], "does not fit"),
    ("export-missing", export_subnet.main,
     ["--checkpoint", f"{P}/nope.pdparams", "--code", CODES[0], "--out", f"{P}/exp/d"], "does not exist"),
    ("eval-limit-zero", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--limit", "0"], "--limit"),
    ("eval-batch-negative", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--batch-size", "-5"], "--batch-size"),
    ("eval-shard", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--shard", "3/2"], "--shard"),
    ("eval-untied", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/untied.json", "--out", f"{P}/e1"], "untied"),
    ("eval-other-submission", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--out", f"{P}/eval_other"],
     "another arch set"),
    ("eval-garbage-journal", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--out", f"{P}/eval_garbage"],
     "not a journal"),
    ("eval-nan-supernet", eval_subnets.main,
     ["--checkpoint", f"{P}/nan/supernet.pdparams", "--archs", f"{P}/archs.json", "--out", f"{P}/e2"], "non-finite"),
    ("eval-out-is-file", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--out", f"{P}/gt.json"],
     "not a folder"),
    ("eval-dup-keys", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/dup_keys.json", "--out", f"{P}/e3"], "appears twice"),
    ("pretrain-epochs", pretrain.main, ["run", "--arch", SMALL, "--max_epoch", "0"], "--max_epoch"),
    ("pretrain-batch", pretrain.main, ["run", "--arch", SMALL, "--batch_size", "0"], "--batch_size"),
    ("pretrain-divisor", pretrain.main, ["run", "--arch", SMALL, "--width_divisor", "3"], "--width_divisor"),
    ("pretrain-code", pretrain.main, ["run", "--arch", "1" * 100_000], "100000 characters"),
    ("pretrain-gt-latin1", pretrain.main, ["run", "--arch", SMALL, "--gt_file", f"{P}/latin1.json", *TINY],
     "not UTF-8"),
    ("pretrain-gt-key-taken", pretrain.main,
     ["run", "--arch", SMALL, "--gt_file", f"{P}/gt_v2.json", "--gt_key", "arch1", *TINY], "holds another code"),
    ("pretrain-gt-protocol", pretrain.main,
     ["run", "--arch", CODES[1], "--gt_file", f"{P}/gt_v2.json", "--gt_key", "arch1", *TINY], "another protocol"),
    ("pretrain-gt-no-protocol", pretrain.main, ["run", "--arch", CODES[0], "--gt_file", f"{P}/gt.json", *TINY],
     "no protocol file"),
    ("pretrain-gt-is-dir", pretrain.main, ["run", "--arch", SMALL, "--gt_file", f"{P}/fmnist", *TINY], "is a folder"),
    ("pretrain-fresh-into-run", pretrain.main, ["run", "--arch", SMALL, "--output_dir", f"{P}/run_other", *TINY],
     "--resume"),
    ("pretrain-resume-other", pretrain.main,
     ["run", "--arch", SMALL, "--output_dir", f"{P}/run_other", "--resume", *TINY], "another run"),
    ("pretrain-unreadable-images", pretrain.main,
     ["run", "--arch", SMALL, "--image_dir", f"{P}/imnet", "--batch_size", "4", "--max_epoch", "1",
      "--num_workers", "0", "--output_dir", f"{P}/pt_imnet", "--gt_file", f"{P}/gt_imnet.json", "--device", "cpu"],
     "cannot be decoded"),
    ("train-epochs", train_supernet.main, ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "train.epochs=0"],
     "train.epochs"),
    ("train-lr-text", train_supernet.main, ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "train.lr=abc"],
     "train.lr"),
    ("train-unknown-key", train_supernet.main, ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "nope.x=1"],
     "unknown config key"),
    ("train-not-yaml", train_supernet.main, ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "train.lr=[1"],
     "not a YAML scalar"),
    ("train-keep-zero", train_supernet.main,
     ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "train.keep_checkpoints=0"], "train.keep_checkpoints"),
    ("train-bool-as-int", train_supernet.main,
     ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "train.batch_size=true"], "train.batch_size"),
    ("train-section", train_supernet.main, ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", "train=3"],
     "is a section"),
    ("train-latin1", train_supernet.main, ["-c", f"{P}/cfg_latin1.yaml"], "not UTF-8"),
    ("train-base-cycle", train_supernet.main, ["-c", f"{P}/cfg_self.yaml"], "cycle"),
    ("train-list-config", train_supernet.main, ["-c", f"{P}/cfg_list.yaml"], "must be a mapping"),
    ("train-missing-config", train_supernet.main, ["-c", f"{P}/nope.yaml"], "does not exist"),
    ("train-fresh-into-run", train_supernet.main,
     ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", f"train.output_dir={P}/run_other", "--check_only"],
     "--resume"),
    ("proxy-gt-missing", run_proxy.main, ["--gt", f"{P}/nope.json"], "--gt"),
    ("proxy-val-zero", run_proxy.main, ["--val-images", "0"], "--val-images"),
    ("proxy-full-model-missing", run_proxy.main, ["--full-model", f"{P}/nope.pdparams"], "--full-model"),
    ("proxy-gt-other-network", run_proxy.main, ["--gt", f"{P}/gt_v2.json", "--out", f"{P}/proxy"],
     "width_divisor 8 vs 4"),
    ("blend-one-input", blend.main, [f"{P}/b.json", f"{P}/scores.json"], "at least two"),
    ("blend-other-codes", blend.main, [f"{P}/b.json", f"{P}/scores.json", f"{P}/eval_other/submission.json"],
     "different codes"),
    ("blend-other-network", blend.main, [f"{P}/b.json", f"{P}/scores.json", f"{P}/pred4.json", f"{P}/pred8.json"],
     "width_divisor"),
    ("blend-weights", blend.main, [f"{P}/b.json", f"{P}/scores.json", f"{P}/gt.json", "--weights", "1,-1"],
     "--weights"),
    ("blend-weights-count", blend.main, [f"{P}/b.json", f"{P}/scores.json", f"{P}/gt.json", "--weights", "1"],
     "--weights"),
    ("blend-into-input", blend.main, [f"{P}/scores.json", f"{P}/scores.json", f"{P}/gt.json"], "also an input"),
    ("blend-nan", blend.main, [f"{P}/b.json", f"{P}/nan_acc.json", f"{P}/scores.json"], "finite"),
    ("campaign-seeds", gt_campaign.main, ["--gt", f"{P}/c.json", "--codes", f"{P}/archs.json", "--seeds", "a,b"],
     "--seeds"),
    ("campaign-protocol", gt_campaign.main, ["--gt", f"{P}/gt_d8.json", "--codes", f"{P}/archs.json"],
     "another protocol"),
    ("campaign-arch-passthrough", gt_campaign.main,
     ["--gt", f"{P}/c.json", "--codes", f"{P}/archs.json", "--", "--arch", SMALL], "set by the campaign"),
    ("campaign-bad-codes", gt_campaign.main, ["--gt", f"{P}/c.json", "--codes", f"{P}/untied.json", "--", "--lr",
                                              "-1"], "--lr"),
    ("campaign-long-code", gt_campaign.main, ["--gt", f"{P}/c.json", "--codes", f"{P}/long_code.txt"],
     "100000 characters"),
    ("ranking-gt-missing", ranking.main, ["--gt", f"{P}/nope.json"], "--gt"),
    ("ranking-variant", ranking.main, ["--gt", f"{P}/gt_v2.json", "--variants", "default,nope"], "--variants"),
    ("ranking-gt-other-network", ranking.main, ["--gt", f"{P}/gt_v2.json", "--work", f"{P}/rk", "--out",
                                                f"{P}/rk.json"], "width_divisor 8 vs 4"),
    ("ranking-exclude-missing", ranking.main, ["--gt", f"{P}/gt_v2.json", "--exclude", f"{P}/nope.json"],
     "--exclude"),
    ("gt-power-gt-missing", gt_power.main, ["--gt", f"{P}/nope.json"], "--gt"),
    ("gt-power-candidate-missing", gt_power.main, ["--candidates", f"{P}/nope.json"], "--candidates"),
    ("gt-power-against-missing", gt_power.main, ["--candidates", f"{P}/gt_v2.json", "--against", f"{P}/nope.json"],
     "--against"),
    ("gt-power-metric", gt_power.main, ["--candidates", f"{P}/gt_v2.json", "--metrics", "top5"], "--metrics"),
    ("gt-power-one-seed", gt_power.main, ["--gt", f"{P}/scores.json", "--out", f"{P}/gp.json"], "two seeds"),
    ("zc-run-not-zero-cost", zc_run.main, [f"{P}"], "no journal"),
    # no output may replace an input, whatever name it is given by
    ("report-out-over-submission", report.main, [f"{P}/scores.json", "--net", "fmnist28", "--out", f"{P}/scores"],
     "would overwrite the input"),
    ("report-out-over-gt", report.main, [f"{P}/scores.json", "--net", "fmnist28", "--gt", f"{P}/gt.json",
                                         "--out", f"{P}/gt"], "would overwrite the input"),
    ("report-divisor", report.main, [f"{P}/scores.json", "--net", "fmnist28", "--width-divisor", "3", "--out",
                                     f"{P}/r"], "--width-divisor"),
    ("export-over-other-json", export_subnet.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--code", CODES[0], "--out", f"{P}/gt"], "not an earlier export"),
    ("export-out-folder", export_subnet.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--code", CODES[0], "--out", f"{P}/exp/"], "is a folder"),
    ("zero-cost-over-input", zero_cost_tool.main, [f"{P}/zc/params.json", "--out", f"{P}/zc"], "would overwrite"),
    ("zero-cost-out-is-file", zero_cost_tool.main, [f"{P}/archs.json", "--out", f"{P}/gt.json"], "not a folder"),
    ("eval-out-over-archs", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/eval_other/submission.json", "--out",
      f"{P}/eval_other"], "would overwrite the input"),
    ("train-out-is-file", train_supernet.main,
     ["-c", f"{ROOT}/configs/fmnist_quick.yaml", "-o", f"train.output_dir={P}/gt.json"], "output folder"),
    # small ones
    ("eval-empty-archs", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/empty.json", "--out", f"{P}/e5"], "holds no codes"),
    ("eval-same-code-two-forms", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/two_forms.json", "--out", f"{P}/e6"],
     "hold the same code"),
    ("files-merge-same-code-two-forms", arch_files.main, ["merge", f"{P}/m2.json", f"{P}/two_forms.json"],
     "hold the same code"),
    ("eval-val-images-too-many", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--out", f"{P}/e7",
      "--val-images", "1000"], "has only 40"),
    ("eval-calib-too-many", eval_subnets.main,
     ["--checkpoint", f"{P}/supernet.pdparams", "--archs", f"{P}/archs.json", "--out", f"{P}/e8",
      "--calib-batches", "100"], "has only 64"),
    ("blend-weights-inf", blend.main, [f"{P}/b.json", f"{P}/scores.json", f"{P}/gt.json", "--weights", "1,inf"],
     "--weights"),
    ("rank-plot-not-picture", rank_corr.main, [f"{P}/scores.json", f"{P}/gt.json", "--plot", f"{P}/out.json"],
     "--plot"),
    ("train-empty-sandwich", train_supernet.main, ["-c", f"{P}/cfg_empty_sandwich.yaml", "--check_only"],
     "trains no subnet"),
]


def snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("name,main,argv,expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(d, capsys, name, main, argv, expect):
    before = snapshot(d)
    try:
        rc = main([a.replace(P, str(d)) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING: OMP", "PLEASE USE OMP"))]
    assert rc == 2, f"exit {rc}, stderr:\n{err[-2000:]}"
    assert "Traceback" not in err
    # one error line (naming the file or option and the rule); only indented details may follow it
    at = [i for i, ln in enumerate(lines) if "error:" in ln or " ERROR " in ln]
    assert len(at) == 1, f"expected one error line, got:\n{err[-2000:]}"
    line, details = lines[at[0]], lines[at[0] + 1:]
    assert all(ln.startswith(" ") for ln in details), f"unindented lines after the error: {details[:3]}"
    assert expect in line or any(expect in ln for ln in details), f"the error does not say {expect!r}: {line!r}"
    assert max(len(ln) for ln in [line, *details]) < 700, "an error line of more than 700 characters"
    after = snapshot(d)
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"files changed by a refused command: {changed}"
    assert not list(d.glob("gt_imnet*")), "a run that saw no data left a ground-truth file"


def test_commands_refuse_without_traceback(tmp_path):
    """The same through real processes: pretrain, and train_supernet.sh resolving a relative config from the
    caller's folder (not the repo's)."""
    r = subprocess.run([sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", SMALL, "--batch_size", "0"],
                       env=run_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("argument --batch_size: 0 must be >= 1")
    (tmp_path / "my.yaml").write_text(f"base: {ROOT / 'configs' / 'fmnist_quick.yaml'}\ntrain:\n  epochs: 0\n")
    r = subprocess.run(["bash", str(ROOT / "train_supernet.sh"), "my.yaml"], cwd=tmp_path, env=run_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "train.epochs is 0" in r.stderr.strip().splitlines()[-1], r.stderr[-1000:]
