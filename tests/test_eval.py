"""Scoring many subnets: resume after a kill, shards, launcher, bad inputs, rank correlation, export."""
import hashlib
import json
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from scipy import stats

from conftest import ROOT, run_and_kill, run_env, write_idx
from supernet.config import load_config
from supernet.metrics import (bootstrap_tau_diff, kendall_tau_b, kendall_within, pearson, rank_blend, spearman,
                              top_k_overlap, zero_cost)
from supernet.resnet import ResNet48, SuperNet
from supernet.space import FMNIST28, OFFICIAL_SPACE, iter_sample, parse_code
from supernet.supernet_train import save_supernet

sys.path.insert(0, str(ROOT / "tools"))

N_CODES = 24


@pytest.fixture(scope="module")
def setup_dir(tmp_path_factory):
    """A small random supernet checkpoint, its config, tiny data and an arch file of 24 codes."""
    d = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    data = d / "fmnist"
    data.mkdir()
    for prefix, n in (("train", 256), ("t10k", 300)):
        labels = rng.integers(0, 10, n)
        images = (rng.random((n, 28, 28)) * 60 + labels[:, None, None] * 18).astype(np.uint8)  # learnable-ish
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", labels)
    cfg = load_config(ROOT / "configs" / "fmnist_sandwich.yaml", [f"data.data_dir={data}"])
    paddle.seed(0)
    sn = SuperNet(FMNIST28)
    save_supernet(sn, cfg, d / "supernet.pdparams")
    archs = {f"arch{i + 1}": {"acc": 0.0, "arch": a.code} for i, a in enumerate(iter_sample(OFFICIAL_SPACE, N_CODES, 3))}
    (d / "archs.json").write_text(json.dumps(archs))
    return d


def eval_cmd(d: Path, out: Path, *extra: str, launch: bool = False) -> list[str]:
    cmd = [sys.executable]
    if launch:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(out) + "_launch"]
    return cmd + [str(ROOT / "eval_subnets.py"), "--checkpoint", str(d / "supernet.pdparams"), "--archs",
                  str(d / "archs.json"), "--out", str(out), "--calib-batches", "2", "--calib-batch-size", "32",
                  "--batch-size", "100", *extra]


def run(cmd, **kw):
    env = {**run_env(), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def reference(setup_dir):
    out = setup_dir / "ref"
    r = run(eval_cmd(setup_dir, out))
    assert r.returncode == 0, r.stderr[-3000:]
    sub = json.loads((out / "submission.json").read_text())
    assert list(sub) == [f"arch{i + 1}" for i in range(N_CODES)]
    assert all(0 <= v["acc"] <= 100 for v in sub.values())
    return sub


def test_resume_after_kill_gives_identical_submission(setup_dir, reference):
    out = setup_dir / "killed"
    journal = out / "journal.s0of1.r0.jsonl"
    run_and_kill(eval_cmd(setup_dir, out), lambda: journal.exists() and len(journal.read_text().splitlines()) >= 6,
                 env={**run_env(), "OMP_NUM_THREADS": "1"})  # killed after header + 5 subnets
    assert not (out / "submission.json").exists()
    with open(journal, "a") as f:
        f.write('{"key": "arch2')  # a torn last line, as a kill mid-write leaves
    r = run(eval_cmd(setup_dir, out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "torn last line" in r.stderr and "already done" in r.stderr
    assert json.loads((out / "submission.json").read_text()) == reference
    # the run's cost, read back from its journal: two processes (killed, resumed), every code, memory recorded
    summary = setup_dir / "killed_run.json"
    r = run([sys.executable, str(ROOT / "benchmarks" / "eval_run.py"), str(out), "--archs",
             str(setup_dir / "archs.json"), "--window", "2", "--out", str(summary)])
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(summary.read_text())
    assert res["codes"] == N_CODES and res["complete"] and res["missing"] == 0
    assert res["processes"] == 2 and res["resumed"] == 1
    assert sum(p["subnets"] for p in res["per_process"]) == N_CODES
    assert 0 < res["wall_hours"] < 1 and res["rss_first_mb"] > 50 and res["rss_last_mb"] > 50
    assert "val_images" in res and res["engine"] in ("fused", "predictor", "dygraph")
    # the same journals compressed (as committed) give the same summary; a folder with both copies is refused
    packed = setup_dir / "packed"
    packed.mkdir()
    for j in out.glob("journal*.jsonl"):
        (packed / (j.name + ".xz")).write_bytes(lzma.compress(j.read_bytes()))
    r = run([sys.executable, str(ROOT / "benchmarks" / "eval_run.py"), str(packed), "--window", "2"])
    assert r.returncode == 0, r.stderr[-3000:]
    r2 = run([sys.executable, str(ROOT / "benchmarks" / "eval_run.py"), str(out), "--window", "2"])
    assert r.stdout == r2.stdout
    shutil.copy(next(out.glob("journal*.jsonl")), packed)
    r = run([sys.executable, str(ROOT / "benchmarks" / "eval_run.py"), str(packed)])
    assert r.returncode == 2 and "keep one" in r.stderr and "Traceback" not in r.stderr
    r = run([sys.executable, str(ROOT / "benchmarks" / "eval_run.py"), str(setup_dir)])
    assert r.returncode == 2 and "no journal" in r.stderr and "Traceback" not in r.stderr


def test_two_shards_merged_equal_one_run(setup_dir, reference):
    parts = []
    for i in range(2):
        out = setup_dir / f"shard{i}"
        r = run(eval_cmd(setup_dir, out, "--shard", f"{i}/2"))
        assert r.returncode == 0, r.stderr[-3000:]
        parts.append(str(out / f"submission.s{i}of2.json"))
    merged = setup_dir / "merged.json"
    r = run([sys.executable, str(ROOT / "tools" / "arch_files.py"), "merge", str(merged), *parts, "--order",
             str(setup_dir / "archs.json")])
    assert r.returncode == 0, r.stderr
    assert json.loads(merged.read_text()) == reference
    meta = json.loads((setup_dir / "merged.meta.json").read_text())  # what the merged scores belong to
    part_meta = json.loads(Path(parts[0]).with_name("submission.s0of2.meta.json").read_text())
    assert meta["codes"] == len(reference) and meta["checkpoint_sha256"] == part_meta["checkpoint_sha256"]
    assert meta["settings"] == part_meta["settings"] and meta["network"] == part_meta["network"]
    # shards scored with other settings are not merged
    other = Path(parts[1]).with_name("submission.s1of2.meta.json")
    m = json.loads(other.read_text())
    m["settings"]["calib_batches"] += 1
    other.write_text(json.dumps(m))
    r = run([sys.executable, str(ROOT / "tools" / "arch_files.py"), "merge", str(setup_dir / "merged2.json"), *parts])
    assert r.returncode == 2 and "different settings" in r.stderr and "Traceback" not in r.stderr
    assert not (setup_dir / "merged2.json").exists()


def test_launcher_ranks_share_the_work(setup_dir, reference):
    out = setup_dir / "launch"
    r = run(eval_cmd(setup_dir, out, launch=True))
    logs = "".join(p.read_text() for p in Path(str(out) + "_launch").glob("workerlog.*"))
    assert r.returncode == 0, logs[-3000:]
    assert {p.name for p in out.glob("journal*")} == {"journal.s0of1.r0.jsonl", "journal.s0of1.r1.jsonl"}
    got = json.loads((out / "submission.json").read_text())
    assert got == reference


def test_rank0_waits_on_journals_not_a_timed_barrier(tmp_path):
    """Rank 0 waits for the other ranks' shares by reading their journals (a gloo barrier gives up after
    30 s, which killed the 45k run's last shard with every score written): it returns once every code is
    in, however late, without touching a journal another process is still writing; and it gives up with
    the codes still missing when no journal grows for the stall limit."""
    import threading
    import time as _time
    from supernet.evaluate import JournalError, read_journals, wait_for_scores
    from supernet.journal import Journal
    header = {"checkpoint_sha256": "x", "settings": {"k": 4}}
    codes = {f"c{i}" for i in range(6)}
    mine = Journal(tmp_path / "journal.s0of1.r0.jsonl", header)
    for c in ("c0", "c1", "c2"):
        mine.append({"arch": c, "acc": 50.0, "nll": 1.0})
    mine.close()
    other = Journal(tmp_path / "journal.s0of1.r1.jsonl", header)
    other._f.write('{"arch": "c3", "acc"')  # the other rank mid-write: a torn line, not to be cut off
    other._f.flush()

    def late_rank():
        _time.sleep(0.5)
        other._f.write(': 51.0, "nll": 1.0}\n')
        other._f.flush()
        for c in ("c4", "c5"):
            _time.sleep(0.3)
            other.append({"arch": c, "acc": 52.0, "nll": 1.0})

    t = threading.Thread(target=late_rank)
    t.start()
    start = _time.time()
    missing = wait_for_scores(tmp_path, header, codes, "journal.s0of1.r*.jsonl", stall_s=30, poll_s=0.05)
    t.join()
    other.close()
    assert missing == set() and _time.time() - start >= 1.0
    assert set(read_journals(tmp_path, header)) == codes  # the torn line was completed by its writer, not cut
    # a rank that stops writing: rank 0 gives up after the stall limit and names what is missing
    missing = wait_for_scores(tmp_path, header, codes | {"c9"}, "journal.s0of1.r*.jsonl", stall_s=0.3, poll_s=0.05)
    assert missing == {"c9"}
    # another run's journal in the folder is still refused when read
    Journal(tmp_path / "journal.s1of2.r0.jsonl", {**header, "checkpoint_sha256": "y"}).close()
    with pytest.raises(JournalError, match="another checkpoint"):
        read_journals(tmp_path, header)


def test_invalid_codes_reported_together_before_work(setup_dir, reference):
    bad = dict(json.loads((setup_dir / "archs.json").read_text()))
    bad["arch3"] = {"acc": 0, "arch": "12345"}
    bad["arch7"] = {"acc": 0, "arch": bad["arch7"]["arch"][:10] + "9" + bad["arch7"]["arch"][11:]}
    path = setup_dir / "bad.json"
    path.write_text(json.dumps(bad))
    out = setup_dir / "ref"  # the reference output folder: must stay intact
    before = (out / "submission.json").read_text()
    cmd = eval_cmd(setup_dir, out)
    cmd[cmd.index("--archs") + 1] = str(path)
    r = run(cmd)
    assert r.returncode == 2
    assert "2 invalid codes" in r.stderr and "arch3: invalid arch code '12345'" in r.stderr and "arch7:" in r.stderr
    assert "Traceback" not in r.stderr
    assert (out / "submission.json").read_text() == before


def test_untied_and_missing_inputs(setup_dir):
    lst = setup_dir / "untied.txt"
    code = OFFICIAL_SPACE.largest().code
    lst.write_text(code + "\n" + code[:7] + "3" + code[8:] + "\n")
    cmd = eval_cmd(setup_dir, setup_dir / "x")
    cmd[cmd.index("--archs") + 1] = str(lst)
    r = run(cmd)
    assert r.returncode == 2 and "arch2: stage 1 slot 1 conv2 code 3 differs" in r.stderr
    cmd[cmd.index("--archs") + 1] = str(setup_dir / "nope.json")
    r = run(cmd)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_wrong_checkpoint_refused_and_results_kept(setup_dir, reference):
    out = setup_dir / "ref"
    journal_before = (out / "journal.s0of1.r0.jsonl").read_text()
    # a checkpoint of another model (a standalone subnet) in the supernet's place
    other = setup_dir / "other"
    other.mkdir(exist_ok=True)
    paddle.save(ResNet48.from_code(OFFICIAL_SPACE.smallest(), FMNIST28).state_dict(), str(other / "supernet.pdparams"))
    (other / "supernet.yaml").write_text((setup_dir / "supernet.yaml").read_text())
    cmd = eval_cmd(setup_dir, out)
    cmd[cmd.index("--checkpoint") + 1] = str(other / "supernet.pdparams")
    r = run(cmd)
    assert r.returncode == 2 and "does not fit this model" in r.stderr and "Traceback" not in r.stderr
    # another supernet (other weights): its journal would mix scores, so it is refused
    paddle.seed(5)
    cfg = load_config(setup_dir / "supernet.yaml")
    save_supernet(SuperNet(FMNIST28), cfg, other / "supernet.pdparams")
    r = run(cmd)
    assert r.returncode == 2 and "written by another checkpoint" in r.stderr
    # other settings too
    r = run(eval_cmd(setup_dir, out, "--val-images", "100"))
    assert r.returncode == 2 and "another checkpoint or other settings" in r.stderr
    assert (out / "journal.s0of1.r0.jsonl").read_text() == journal_before
    assert json.loads((out / "submission.json").read_text()) == reference


def test_not_a_checkpoint(setup_dir):
    junk = setup_dir / "junk"
    junk.mkdir(exist_ok=True)
    (junk / "supernet.pdparams").write_bytes(b"garbage")
    (junk / "supernet.yaml").write_text((setup_dir / "supernet.yaml").read_text())
    cmd = eval_cmd(setup_dir, setup_dir / "junk_out")
    cmd[cmd.index("--checkpoint") + 1] = str(junk / "supernet.pdparams")
    r = run(cmd)
    assert r.returncode == 2 and "not a readable Paddle checkpoint" in r.stderr


def test_export_matches_supernet(setup_dir, tmp_path):
    code = next(iter_sample(OFFICIAL_SPACE, 1, seed=11)).code
    prefix = tmp_path / "exp" / "m"
    r = run([sys.executable, str(ROOT / "tools" / "export_subnet.py"), "--checkpoint", str(setup_dir / "supernet.pdparams"),
             "--code", code, "--out", str(prefix), "--calib-batches", "0"])
    assert r.returncode == 0, r.stderr[-3000:]
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype("float32"))
    sn = SuperNet(FMNIST28)
    sn.set_state_dict(paddle.load(str(setup_dir / "supernet.pdparams")))
    sn.eval()
    sn.set_active(code)
    want = sn(x).numpy()
    loaded = paddle.jit.load(str(prefix))
    loaded.eval()
    # float32 sums of logits in the hundreds: the error scales with the largest logit, not each element
    np.testing.assert_allclose(loaded(x).numpy(), want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))
    standalone = ResNet48.from_code(code, FMNIST28)
    standalone.set_state_dict(paddle.load(str(prefix) + ".pdparams"))
    standalone.eval()
    np.testing.assert_allclose(standalone(x).numpy(), want, rtol=1e-5, atol=1e-5)


def test_rank_metrics_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 7, 50, 400):
        x = rng.integers(0, 6, n).astype(float)
        y = np.round(x * 0.3 + rng.normal(size=n), 1)
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert np.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert top_k_overlap([3, 2, 1, 0], [0, 1, 2, 3], 2) == 0.0
    assert top_k_overlap([3, 2, 1, 0], [3, 2, 0, 1], 2) == 1.0


def test_kendall_within_groups_counts_only_pairs_inside_a_group():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 40).astype(float)
    y = np.round(x * 0.5 + rng.normal(size=40), 1)
    tau, pairs = kendall_within(x, y, np.zeros(40))  # one group: plain tau-b, ties included
    assert tau == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12) and pairs == 40 * 39 // 2
    # two depth groups, each ordered backwards inside but the deeper group better: overall tau is positive,
    # the within-group tau is -1 (a predictor that only knows depth learns nothing from the inside pairs)
    depth = np.array([10, 10, 10, 12, 12, 12], float)
    pred = np.array([1, 2, 3, 11, 12, 13], float)
    gt = np.array([3, 2, 1, 13, 12, 11], float)
    assert kendall_tau_b(pred, gt) > 0
    assert kendall_within(pred, gt, depth) == (pytest.approx(-1.0), 6)
    tau, pairs = kendall_within([1, 2, 3], [3, 1, 2], [1, 2, 3])  # no two items share a group
    assert np.isnan(tau) and pairs == 0


def test_zero_cost_floor_includes_depth():
    code = OFFICIAL_SPACE.largest().code
    assert zero_cost([code])["depth"] == [float(sum(OFFICIAL_SPACE.largest().depths))]


def test_bootstrap_tau_difference():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=30)
    noisy = gt + rng.normal(scale=1.0, size=30)
    same = bootstrap_tau_diff(noisy, noisy, gt, n_boot=200)
    assert same["diff"] == same["lo"] == same["hi"] == 0.0 and same["p_ahead"] == 0.0
    perfect = bootstrap_tau_diff(gt, noisy, gt, n_boot=200)
    assert perfect["diff"] == pytest.approx(1 - kendall_tau_b(noisy, gt))
    assert 0 < perfect["lo"] <= perfect["diff"] <= perfect["hi"] and perfect["p_ahead"] > 0.95
    backwards = bootstrap_tau_diff(-gt, gt, gt, n_boot=200)
    assert backwards["diff"] == -2.0 and backwards["p_ahead"] == 0.0
    with pytest.raises(ValueError):
        bootstrap_tau_diff(gt[:5], gt, gt)


def test_rank_blend_by_hand():
    # ranks 0..1: a = [0, .5, 1], b = [1, 0, .5] (ties in c share their mean rank)
    assert rank_blend([[1, 2, 3], [30, 10, 20]]) == pytest.approx([0.5, 0.25, 0.75])
    assert rank_blend([[1, 2, 3], [30, 10, 20]], [3, 1]) == pytest.approx([0.25, 0.375, 0.875])
    assert rank_blend([[5, 5, 9]]) == pytest.approx([0.25, 0.25, 1.0])
    assert rank_blend([[1, 2, 3], [3, 2, 1]], [0, 1]) == pytest.approx([1.0, 0.5, 0.0])
    for bad in (([[1, 2], [1, 2, 3]], None), ([[1, 2]], [1, 1]), ([[1, 2]], [0]), ([[1, 2]], [-1])):
        with pytest.raises(ValueError):
            rank_blend(*bad)


def test_blend_tool_writes_ranks_and_record(tmp_path):
    import blend

    codes = [a.code for a in iter_sample(OFFICIAL_SPACE, 4, seed=3)]
    a = {f"arch{i + 1}": {"arch": c, "acc": float(i)} for i, c in enumerate(codes)}  # 0 1 2 3
    b = {f"k{i}": {"arch": c, "acc": float(-i * i)} for i, c in enumerate(reversed(codes))}  # other keys, order
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    net = {"network": {"dataset": "fmnist", "width_divisor": 8, "input_size": 28}}
    (tmp_path / "a.meta.json").write_text(json.dumps(net))
    assert blend.main([str(tmp_path / "c.json"), str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = json.loads((tmp_path / "c.json").read_text())
    assert list(out) == list(a) and [v["arch"] for v in out.values()] == codes  # keyed like the first file
    # b by code: codes[3] -> 0, codes[2] -> -1, codes[1] -> -4, codes[0] -> -9, i.e. the same order as a
    assert [v["acc"] for v in out.values()] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    meta = json.loads((tmp_path / "c.meta.json").read_text())
    assert meta["network"] == net["network"] and meta["codes"] == 4
    assert [m["sha256"] for m in meta["blend"]] == [hashlib.sha256((tmp_path / f).read_bytes()).hexdigest()
                                                    for f in ("a.json", "b.json")]


def test_rank_corr_tool_matches_by_code(tmp_path, dev_gt):
    gt = json.loads(dev_gt.read_text())
    # predictions under other keys, in another order, one extra code: matching is by code
    pred = {f"p{i}": {"arch": v["arch"], "acc": v["acc"] + (i % 3) * 0.01} for i, v in enumerate(reversed(gt.values()))}
    pred["extra"] = {"arch": OFFICIAL_SPACE.largest().code, "acc": 1.0}
    pp = tmp_path / "pred.json"
    pp.write_text(json.dumps(pred))
    png = tmp_path / "s.png"
    r = run([sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(pp), str(dev_gt), "--json", "--plot", str(png),
             "--net", "fmnist28", "--plain-mean"])
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    codes = [v["arch"] for v in gt.values()]
    p = [next(x["acc"] for x in pred.values() if x["arch"] == c) for c in codes]
    g = [gt[k]["acc"] for k in gt]
    assert res["n"] == len(gt) and res["unmatched_pred"] == 1
    assert res["kendall"] == pytest.approx(stats.kendalltau(p, g).statistic)
    assert res["pearson"] == pytest.approx(stats.pearsonr(p, g).statistic)
    assert {"macs", "params", "depth"} == set(res["floor"])
    w = res["within_depth"]  # tau over the pairs of equal depth, for the prediction and for MACs
    assert w["pairs"] > 0 and -1 <= w["prediction"] <= 1 and -1 <= w["macs"] <= 1
    vs = res["vs_zero_cost"]  # paired bootstrap against the better zero-cost predictor
    best = max(res["floor"], key=lambda k: res["floor"][k]["kendall"])
    assert vs["against"] == best and vs["diff"] == pytest.approx(res["kendall"] - res["floor"][best]["kendall"])
    assert vs["lo"] <= vs["diff"] <= vs["hi"] and res["vs_other"] is None
    # against another prediction file: here the ground truth itself, which is ahead of everything
    r = run([sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(pp), str(dev_gt), "--json", "--net", "fmnist28",
             "--against", str(dev_gt), "--plain-mean"])
    other = json.loads(r.stdout)["vs_other"]
    assert other["other_kendall"] == pytest.approx(1.0) and other["diff"] == pytest.approx(res["kendall"] - 1.0)
    assert other["hi"] <= 0 and other["p_ahead"] == 0.0
    assert png.stat().st_size > 10_000


def test_ground_truth_ranked_by_test_cross_entropy(tmp_path):
    """--gt-metric ce ranks the ground truth by minus the mean of per_seed_ce, not by top-1."""
    from supernet.groundtruth import gt_scores

    codes = [a.code for a in iter_sample(OFFICIAL_SPACE, 4, seed=5)]
    # top-1 says 0 > 1 > 2 > 3; cross-entropy says the reverse
    gt = {f"arch{i}": {"arch": c, "acc": 90.0 - i, "per_seed": {"1": 90.0 - i},
                       "per_seed_ce": {"1": 0.40 - 0.01 * i, "2": 0.42 - 0.01 * i}} for i, c in enumerate(codes)}
    g = tmp_path / "gt.json"
    g.write_text(json.dumps(gt))
    ce = gt_scores(g, "ce")
    assert ce[codes[3]] == pytest.approx(-0.38) and ce[codes[0]] == pytest.approx(-0.41)
    assert gt_scores(g, "top1") == {c: 90.0 - i for i, c in enumerate(codes)}
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({f"p{i}": {"arch": c, "acc": float(i)} for i, c in enumerate(codes)}))
    r = run([sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(pred), str(g), "--json", "--net", "fmnist28",
             "--gt-metric", "ce"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kendall"] == pytest.approx(1.0) and json.loads(r.stdout)["gt_metric"] == "ce"
    r = run([sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(pred), str(g), "--json", "--net", "fmnist28"])
    assert json.loads(r.stdout)["kendall"] == pytest.approx(-1.0)
    # held-out codes only: the first two codes left out
    held = tmp_path / "seen.json"
    held.write_text(json.dumps({"a": {"arch": codes[0]}, "b": {"arch": codes[1]}}))
    r = run([sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(pred), str(g), "--json", "--net", "fmnist28",
             "--exclude", str(held)])
    res = json.loads(r.stdout)
    assert r.returncode == 0 and res["n"] == 2 and res["excluded"] == 2 and res["unmatched_gt"] == 0


def test_seed_offsets_are_removed_before_ranking_the_ground_truth(tmp_path):
    """Seed 1 lifts every code by 1 point; the code that only has seed 1 must not rank above the others
    for it (a plain mean does exactly that), and balanced codes keep their order."""
    from supernet.groundtruth import gt_scores, seed_adjusted

    true = [90.0, 90.3, 90.6, 90.15]
    codes = [a.code for a in iter_sample(OFFICIAL_SPACE, 4, seed=6)]
    per = [{"1": t + 1.0, "2": t} for t in true[:3]] + [{"1": true[3] + 1.0}]  # the last code: seed 1 only
    gt = {f"arch{i}": {"arch": c, "acc": sum(p.values()) / len(p), "per_seed": p,
                       "per_seed_ce": {s: 1.0 - v / 100 for s, v in p.items()}} for i, (c, p) in enumerate(zip(codes, per))}
    g = tmp_path / "gt.json"
    g.write_text(json.dumps(gt))
    plain, fair = gt_scores(g, "top1", adjust_seeds=False), gt_scores(g, "top1")
    assert plain[codes[3]] > plain[codes[2]]  # the lucky seed lifts it above every better code
    assert [fair[c] - fair[codes[0]] for c in codes] == pytest.approx([t - true[0] for t in true])
    ce = gt_scores(g, "ce")
    assert [ce[c] - ce[codes[0]] for c in codes] == pytest.approx([(t - true[0]) / 100 for t in true])
    assert seed_adjusted({"a": {"1": 2.0, "2": 1.0}, "b": {"1": 4.0, "2": 3.0}}) == pytest.approx({"a": 1.5, "b": 3.5})
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({f"p{i}": {"arch": c, "acc": t} for i, (c, t) in enumerate(zip(codes, true))}))
    args = [sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(pred), str(g), "--json", "--net", "fmnist28"]
    fair_tau = json.loads(run(args).stdout)["kendall"]
    plain_tau = json.loads(run(args + ["--plain-mean"]).stdout)["kendall"]
    assert fair_tau == pytest.approx(1.0) and plain_tau < 1.0


@pytest.mark.parametrize("engine", ["predictor", "fused"])
def test_cpu_engines_agree_with_dygraph(setup_dir, engine):
    """Every engine scores a trained supernet's subnets as dygraph does (top-1 within one image of 120)."""
    from supernet.evaluate import EvalData, ScoreSettings, load_supernet, score

    model, cfg = load_supernet(setup_dir / "supernet.pdparams")
    dy = EvalData(cfg, ScoreSettings(120, 2, 32, 50, 0, "dygraph"))
    other = EvalData(cfg, ScoreSettings(120, 2, 32, 50, 0, engine))
    for arch in iter_sample(OFFICIAL_SPACE, 3, seed=21):
        a, b = score(model, arch, other), score(model, arch, dy)
        assert a.top1 == pytest.approx(b.top1, abs=100 / 120 + 1e-9)
        assert a.nll == pytest.approx(b.nll, rel=1e-3)


@pytest.mark.parametrize("amp,cache_gib", [(False, 4.0), (True, 4.0), (False, 1e-9)],
                         ids=["fp32-cached", "autocast", "streamed"])
def test_supernet_engine_agrees_with_extracted_subnets(setup_dir, amp, cache_gib):
    """The GPU engine (the supernet itself, the subnet active, counts on the device) scores as a standalone
    extracted subnet does, and leaves the supernet's BN statistics as they were. On the CPU Paddle's
    autocast leaves convolutions in float32, so ``amp`` runs its code path at full precision here."""
    from supernet.bn_calib import bn_layers
    from supernet.evaluate import EvalData, ScoreSettings, load_supernet, score

    model, cfg = load_supernet(setup_dir / "supernet.pdparams")
    before = [m._mean.numpy().copy() for m in bn_layers(model)]
    dy = EvalData(cfg, ScoreSettings(120, 2, 32, 50, 0, "dygraph"))
    sn = EvalData(cfg, ScoreSettings(120, 2, 32, 50, 0, "supernet", amp, cache_gib))
    assert sn.streamed == (cache_gib < 1)
    for arch in iter_sample(OFFICIAL_SPACE, 3, seed=21):
        a, b = score(model, arch, sn), score(model, arch, dy)
        assert a.top1 == pytest.approx(b.top1, abs=1e-9)
        assert a.nll == pytest.approx(b.nll, rel=1e-4)
    assert all(np.array_equal(x, m._mean.numpy()) for x, m in zip(before, bn_layers(model)))


def test_rank_by_top1_and_loss(setup_dir, reference):
    """The journal keeps top-1 and cross-entropy; --rank-by chooses the submission's number from them."""
    import math

    ref_dir = setup_dir / "ref"
    records = {}
    for line in (ref_dir / "journal.s0of1.r0.jsonl").read_text().splitlines()[1:]:
        rec = json.loads(line)
        records[rec["key"]] = rec
    for k, v in reference.items():  # default: loss
        assert v["acc"] == pytest.approx(100 * math.exp(-records[k]["nll"]))
    r = run(eval_cmd(setup_dir, ref_dir, "--rank-by", "top1"))  # everything scored: only rewrites
    assert r.returncode == 0, r.stderr[-3000:]
    top1 = json.loads((ref_dir / "submission.json").read_text())
    assert {k: v["acc"] for k, v in top1.items()} == {k: records[k]["acc"] for k in records}


def test_cross_entropy_counts_match_paddle():
    from supernet.evaluate import _counts

    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(50, 10)) * 5).astype("float32")
    y = rng.integers(0, 10, 50)
    correct, nll = _counts(logits, y)
    want = float(paddle.nn.functional.cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(y), reduction="sum"))
    assert nll == pytest.approx(want, rel=1e-5)
    assert correct == int((logits.argmax(-1) == y).sum())


def test_scores_are_bound_to_codes_not_keys(setup_dir, reference, tmp_path):
    """A second arch file with the same keys (arch1..N) but other codes gets its own codes scored, even
    in a folder whose journal holds the first file's scores; a code scored before is reused under any key."""
    from supernet.space import OFFICIAL_SPACE, iter_sample

    ref_codes = json.loads((setup_dir / "archs.json").read_text())
    other = {f"arch{i + 1}": {"arch": a.code} for i, a in enumerate(iter_sample(OFFICIAL_SPACE, 3, 99))}
    other["arch4"] = {"arch": ref_codes["arch7"]["arch"]}  # a code the journal already holds, under another key
    (tmp_path / "other.json").write_text(json.dumps(other))
    warm = tmp_path / "warm"
    warm.mkdir()
    for j in (setup_dir / "ref").glob("journal*.jsonl"):
        (warm / j.name).write_bytes(j.read_bytes())

    def cmd(out: Path, archs: Path = tmp_path / "other.json") -> list[str]:
        return [sys.executable, str(ROOT / "eval_subnets.py"), "--checkpoint", str(setup_dir / "supernet.pdparams"),
                "--archs", str(archs), "--out", str(out), "--calib-batches", "2", "--calib-batch-size", "32",
                "--batch-size", "100"]

    r = run(cmd(warm))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 already done, 3 to score" in r.stderr
    cold = tmp_path / "cold"
    r = run(cmd(cold))
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads((warm / "submission.json").read_text())
    assert got == json.loads((cold / "submission.json").read_text())
    assert got["arch4"]["acc"] == reference["arch7"]["acc"]
    assert [v["arch"] for v in got.values()] == [v["arch"] for v in other.values()]
    # the first file's submission in its own folder is never overwritten by another arch set
    before = (setup_dir / "ref" / "submission.json").read_bytes()
    r = run(cmd(setup_dir / "ref"))
    assert r.returncode == 2 and "another arch set" in r.stderr
    assert (setup_dir / "ref" / "submission.json").read_bytes() == before


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_shards_partition_contiguous_in_prefix_order_and_balanced(count: int):
    """Every code lands in exactly one share; a share is a contiguous run of the prefix-sorted codes (what
    prefix reuse needs) of about equal estimated cost; keys keep their given order."""
    from supernet.evaluate import estimated_cost, prefix_order, shard_keys

    archs = {f"arch{i}": a for i, a in enumerate(iter_sample(OFFICIAL_SPACE, 400, seed=3))}
    keys = list(archs)[::-1]
    shares = [shard_keys(archs, keys, i, count) for i in range(count)]
    assert sorted(k for s in shares for k in s) == sorted(keys)
    order = sorted(keys, key=lambda k: (prefix_order(archs[k]), k))
    pos = {k: i for i, k in enumerate(order)}
    total = sum(map(estimated_cost, archs.values()))
    for s in shares:
        assert s == [k for k in keys if k in set(s)]  # the caller's order
        idx = sorted(pos[k] for k in s)
        assert idx == list(range(idx[0], idx[0] + len(idx)))  # contiguous in prefix order
        assert abs(sum(estimated_cost(archs[k]) for k in s) - total / count) <= 1.0  # within ~one code's cost


def test_diagnosis_by_hand():
    from supernet.metrics import concordance_by_gap, diagnosis

    # four codes: gaps in depth 1, 2, 3 between neighbours; the prediction inverts the pair one block apart
    gt, pred, depth = [1.0, 2.0, 4.0, 7.0], [2.0, 1.0, 4.0, 7.0], [10, 11, 13, 16]
    by = {g["gap"]: g for g in concordance_by_gap(pred, gt, depth)}
    assert by["1"] == {"gap": "1", "pairs": 1, "concordant": 0.0}
    assert by["2"]["pairs"] == 1 and by["2"]["concordant"] == 1.0  # 11 vs 13
    assert by["3+"]["pairs"] == 4 and by["3+"]["concordant"] == 1.0
    codes = [a.code for a in iter_sample(OFFICIAL_SPACE, 12, seed=9)]
    archs = [parse_code(c) for c in codes]
    d = diagnosis([float(a.depths[2]) for a in archs], codes, [float(a.depth) for a in archs])
    assert d["tau_stage_depth"][2] == pytest.approx(1.0)
    assert len(d["tau_stage_width"]) == 4 and d["equal_depth_pairs"] >= 0


def test_within_group_interval_follows_the_agreement():
    from supernet.metrics import bootstrap_within_interval

    rng = np.random.default_rng(0)
    groups = np.repeat([14, 17], 15)
    x = rng.normal(size=30)
    lo, hi = bootstrap_within_interval(x, x + 0.01 * rng.normal(size=30), groups, n_boot=300)
    assert lo > 0.8 and hi <= 1.0
    lo, hi = bootstrap_within_interval(x, rng.normal(size=30), groups, n_boot=300)
    assert lo < 0 < hi
    assert all(np.isnan(bootstrap_within_interval([1.0, 2.0], [2.0, 1.0], [1, 2], n_boot=20)))
