"""Ground-truth campaigns: code choice spread over MACs, jobs run and merged, resume, failures kept out."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, real_fmnist, run_env
from supernet import groundtruth
from supernet.space import FMNIST28, OFFICIAL_SPACE, count_cost, iter_sample

sys.path.insert(0, str(ROOT / "benchmarks"))
import gt_power  # noqa: E402

CODES = ["1222233333000000333300000055550000000000007777000000",
         "1558511131112131312111212121215121315151312111212161"]
TINY = ["--train_images", "320", "--val_images", "200", "--batch_size", "32", "--lr", "0.4", "--warmup", "0.3",
        "--max_epoch", "2", "--width_divisor", "8"]


def test_stratified_choice_spans_macs_and_keeps_what_the_gt_holds():
    archs = {f"arch{i}": a for i, a in enumerate(iter_sample(OFFICIAL_SPACE, 400, seed=5))}
    macs = {k: count_cost(a, FMNIST28).macs for k, a in archs.items()}
    lo, hi = min(macs, key=macs.get), max(macs, key=macs.get)
    chosen = groundtruth.stratified_by_macs(archs, 10, 0, FMNIST28)
    assert len(chosen) == 10 and lo in chosen and hi in chosen
    assert chosen == groundtruth.stratified_by_macs(archs, 10, 0, FMNIST28)  # seeded
    ranks = sorted(sorted(macs, key=macs.get).index(k) for k in chosen)
    assert all(b - a < 2 * 400 / 10 for a, b in zip(ranks, ranks[1:])), "a gap in MACs wider than two bins"
    keep = {k: archs[k] for k in list(chosen)[:4]}
    grown = groundtruth.stratified_by_macs(archs, 20, 1, FMNIST28, keep)
    assert set(keep) <= set(grown) and 19 <= len(grown) <= 24


def campaign(tmp_path: Path, *extra: str, codes: str = "codes.txt", **kw) -> subprocess.CompletedProcess:
    (tmp_path / "codes.txt").write_text("\n".join(CODES) + "\n")
    cmd = [sys.executable, str(ROOT / "tools" / "gt_campaign.py"), "--gt", str(tmp_path / "gt.json"), "--codes",
           str(tmp_path / codes), "--seeds", "1,2", "--jobs", "2", "--work", str(tmp_path / "work"), *extra,
           "--", *TINY]
    return subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=900, **kw)


def test_campaign_runs_merges_and_skips_what_is_done(tmp_path):
    real_fmnist()
    r = campaign(tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    gt = json.loads((tmp_path / "gt.json").read_text())
    assert sorted(v["arch"] for v in gt.values()) == sorted(CODES)
    for v in gt.values():
        assert set(v["per_seed"]) == set(v["per_seed_ce"]) == set(v["per_seed_train_loss"]) == {"1", "2"}
        assert v["acc"] == pytest.approx(sum(v["per_seed"].values()) / 2, abs=1e-3)
        assert all(0 < ce < 5 for ce in v["per_seed_ce"].values())
    proto = json.loads((tmp_path / "gt.protocol.json").read_text())
    assert proto["width_divisor"] == 8 and proto["max_epoch"] == 2 and proto["train_images"] == 320
    lines = (tmp_path / "work" / "campaign.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(ln)["rc"] == 0 and json.loads(ln)["resumed"] is False for ln in lines)
    again = campaign(tmp_path)
    assert again.returncode == 0 and "0 jobs to run, 4 already in" in again.stderr
    # the same GT file under another protocol is refused before any job
    other = subprocess.run([sys.executable, str(ROOT / "tools" / "gt_campaign.py"), "--gt", str(tmp_path / "gt.json"),
                            "--codes", str(tmp_path / "codes.txt"), "--", *TINY[:-1], "4"], env=run_env(),
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and "width_divisor 4 vs 8" in other.stderr


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


def test_killed_campaign_resumes_its_jobs(tmp_path):
    real_fmnist()
    (tmp_path / "codes.txt").write_text(CODES[1] + "\n")
    cmd = [sys.executable, str(ROOT / "tools" / "gt_campaign.py"), "--gt", str(tmp_path / "gt.json"), "--codes",
           str(tmp_path / "codes.txt"), "--seeds", "1", "--jobs", "1", "--work", str(tmp_path / "work"),
           "--save-every-steps", "3", "--", *TINY]
    proc = subprocess.Popen(cmd, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "work" / f"{CODES[1]}_s1" / "checkpoints"
    deadline = time.time() + 300
    while not list(ck.glob("ckpt_s000000006.json")):
        assert proc.poll() is None and time.time() < deadline, "the campaign ended before it could be stopped"
        time.sleep(0.01)
    proc.send_signal(signal.SIGHUP)  # a closed terminal: the jobs stop too, no orphan trains on
    proc.wait(timeout=60)
    time.sleep(1.0)
    work = str(tmp_path / "work")
    orphans = [p for p in Path("/proc").glob("[0-9]*/cmdline") if work.encode() in _read(p)]
    assert not orphans, "pretrain jobs outlived the campaign"
    assert not (tmp_path / "gt.json").exists()
    r = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (tmp_path / "work" / f"{CODES[1]}_s1" / "campaign.log").read_text()
    assert "resuming from" in log
    assert list(json.loads((tmp_path / "gt.json").read_text()).values())[0]["per_seed"].keys() == {"1"}
    # its wall time covers only the part after the checkpoint: recorded as resumed, left out of the cost per job
    rec = json.loads((tmp_path / "gt.jobs.jsonl").read_text())
    assert rec["resumed"] is True
    assert gt_power.job_minutes(tmp_path / "gt.json") == {"jobs_timed": 0, "jobs_resumed": 1, "cpu_min_median": None,
                                                          "cpu_min_mean": None}


def test_failed_job_is_reported_and_not_recorded(tmp_path):
    real_fmnist()
    (tmp_path / "codes.txt").write_text(CODES[0] + "\n")
    cmd = [sys.executable, str(ROOT / "tools" / "gt_campaign.py"), "--gt", str(tmp_path / "gt.json"), "--codes",
           str(tmp_path / "codes.txt"), "--seeds", "3", "--jobs", "1", "--work", str(tmp_path / "work"), "--",
           *TINY[:-6], "--lr", "1e8", "--warmup", "0", "--max_epoch", "1"]
    r = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 1
    assert "1 of 1 jobs failed" in r.stderr and "diverged" in r.stderr
    assert not (tmp_path / "gt.json").exists()


@pytest.mark.parametrize("order", ["seed", "code"])
def test_job_order_seed_by_seed_or_code_by_code(tmp_path, order):
    """--dry-run lists the jobs in the order they run: every code's seed 1 first (default), or all seeds of
    a code before the next code (designed tests); seeds the GT file holds are skipped either way."""
    (tmp_path / "codes.txt").write_text("\n".join(CODES) + "\n")
    cmd = [sys.executable, str(ROOT / "tools" / "gt_campaign.py"), "--gt", str(tmp_path / "gt.json"), "--codes",
           str(tmp_path / "codes.txt"), "--seeds", "1,2", "--order", order, "--dry-run", "--", *TINY]
    r = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = [(ln.split("\t")[1], ln.split("\t")[2]) for ln in r.stdout.splitlines() if "\tseed " in ln]
    a, b = CODES
    expect = {"seed": [(a, "seed 1"), (b, "seed 1"), (a, "seed 2"), (b, "seed 2")],
              "code": [(a, "seed 1"), (a, "seed 2"), (b, "seed 1"), (b, "seed 2")]}[order]
    assert jobs == expect
    assert not (tmp_path / "gt.json").exists(), "a dry run wrote the GT file"


def test_seed_agreement_within_equal_depth():
    """Two seeds that agree only on depth (deeper is better, reversed inside each depth) agree at tau -1
    over the equal-depth pairs, though their overall tau is positive."""
    by_depth: dict[int, list[str]] = {}
    for a in iter_sample(OFFICIAL_SPACE, 2000, seed=3):
        by_depth.setdefault(sum(a.depths), []).append(a.code)
    d1, d2 = sorted(d for d, c in by_depth.items() if len(c) >= 3)[:2]
    gt = {}
    for rank, (depth, i) in enumerate([(d1, 0), (d1, 1), (d1, 2), (d2, 0), (d2, 1), (d2, 2)]):
        base = 80.0 + 5 * (depth == d2)
        gt[f"c{rank}"] = {"arch": by_depth[depth][i], "per_seed": {"1": base + i, "2": base - i}}
    assert gt_power.seed_agreement(gt) > 0
    assert gt_power.seed_agreement(gt, same_depth=True) == pytest.approx(-1.0)


def test_agreement_with_another_protocol_matches_codes_not_keys():
    """Two GT files that order depths alike and reverse each other inside a depth: overall tau > 0, tau over
    equal-depth pairs -1; codes are matched by code (keys differ), codes only one file holds are left out."""
    by_depth: dict[int, list[str]] = {}
    for a in iter_sample(OFFICIAL_SPACE, 2000, seed=3):
        by_depth.setdefault(a.depth, []).append(a.code)
    d1, d2 = sorted(d for d, c in by_depth.items() if len(c) >= 4)[:2]
    mine, ref = {}, {}
    for depth, i in [(d1, 0), (d1, 1), (d1, 2), (d2, 0), (d2, 1), (d2, 2)]:
        base = 80.0 + 5 * (depth == d2)
        mine[f"a{depth}_{i}"] = {"arch": by_depth[depth][i], "acc": base + i}
        ref[f"b{depth}_{i}"] = {"arch": by_depth[depth][i], "acc": base - i}
    ref["only_ref"] = {"arch": by_depth[d1][3], "acc": 99.0}
    out = gt_power.agreement(mine, ref)
    assert out["ref_codes"] == 6 and out["ref_pairs_same_depth"] == 6
    assert out["ref_tau"] > 0 and out["ref_tau_same_depth"] == pytest.approx(-1.0)
    assert gt_power.agreement(mine, {"x": {"arch": by_depth[d1][3], "acc": 1.0}})["ref_tau"] is None


def test_spread_within_depth_is_the_means_spread_less_their_noise():
    """One-way ANOVA by depth: with noiseless means, the pooled within-depth sd; noise that explains the
    whole spread leaves 0; depth groups of one code carry no information."""
    depths = [10, 10, 10, 12, 12, 15]
    means = np.array([80.0, 81.0, 82.0, 84.0, 86.0, 90.0])  # within-depth squares: 2 + 2, 3 degrees of freedom
    assert gt_power.same_depth_sd(depths, means, np.zeros(6)) == pytest.approx((4 / 3) ** 0.5)
    # noise variance v per mean contributes v * (n - 1) per group: 2v + v = 3v of the 4, so v = 4/3 explains it all
    assert gt_power.same_depth_sd(depths, means, np.full(6, 4 / 3)) == pytest.approx(0.0, abs=1e-9)
    assert gt_power.same_depth_sd(depths, means, np.full(6, 1.0)) == pytest.approx(((4 - 3) / 3) ** 0.5)
    assert gt_power.same_depth_sd([10, 12, 15], means[:3], np.zeros(3)) is None
