"""Zero-cost predictors against hand-computed cases, and the tool: sharded, resumable, bound to settings."""
from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from conftest import ROOT
from supernet.space import parse_code
from supernet.zero_cost import NaswotKernel, gaussian_init, grad_scores, naswot_logdet, synflow_score, zen_score

sys.path.insert(0, str(ROOT / "tools"))
import rank_corr  # noqa: E402
import zero_cost as tool  # noqa: E402


def test_naswot_kernel_by_hand():
    # codes 10 and 11: K = [[2, 1], [1, 2]] (N_A = 2 units minus Hamming distance), det 3
    assert naswot_logdet(np.array([[1, 0], [1, 1]])) == pytest.approx(math.log(3))
    assert naswot_logdet(np.array([[1, 0], [1, 0]])) == float("-inf")  # identical codes: singular


def test_synflow_of_a_linear_chain_is_depth_times_flow():
    """For a bias-free chain of L linear layers R is homogeneous of degree 1 in each layer's weights, so
    sum(theta * dR/dtheta) = L * R, with R = 1^T |W1| |W2| 1."""
    paddle.seed(3)
    net = nn.Sequential(nn.Linear(4, 3, bias_attr=False), nn.Linear(3, 2, bias_attr=False))
    w1, w2 = (np.abs(m.weight.numpy()).astype(np.float64) for m in net)
    flow = float(np.ones(4) @ w1 @ w2 @ np.ones(2))
    assert synflow_score(net, [1, 4]) == pytest.approx(2 * flow, rel=1e-10)


def test_grad_norm_snip_and_naswot_codes_by_hand():
    paddle.seed(0)
    net = nn.Sequential(nn.Linear(5, 6, bias_attr=False), nn.ReLU(), nn.Linear(6, 3, bias_attr=False))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    w1, w2 = (m.weight.numpy().astype(np.float64) for m in (net[0], net[2]))
    h = x @ w1
    a = np.maximum(h, 0)
    z = a @ w2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[y]) / len(y)
    g2 = a.T @ dz
    g1 = x.T @ ((dz @ w2.T) * (h > 0))
    kernel = NaswotKernel()
    got = grad_scores(net, paddle.to_tensor(x), paddle.to_tensor(y), kernel)
    assert got["grad_norm"] == pytest.approx(np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-4)
    assert got["snip"] == pytest.approx(np.abs(g1 * w1).sum() + np.abs(g2 * w2).sum(), rel=1e-4)
    assert kernel.units == 6 and kernel.logdet() == pytest.approx(naswot_logdet(h > 0))
    c = (h > 0).astype(float)
    assert kernel.logdet() == pytest.approx(np.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)[1])


def test_zen_score_by_hand():
    """f = BN(conv1x1(x)) in training mode: Zen = log mean_b ||f(x) - f(x + a eps)||_F
    + log sqrt(mean_j var_j) of the BN input on x, with the same Gaussian draws."""
    net = nn.Sequential(nn.Conv2D(2, 3, 1, bias_attr=False), nn.BatchNorm2D(3))
    gaussian_init(net, seed=1)
    w = net[0].weight.numpy()[:, :, 0, 0].astype(np.float64)
    shape = [16, 2, 4, 4]
    gen = np.random.default_rng(5)
    x = gen.standard_normal(shape).astype(np.float32).astype(np.float64)
    eps = gen.standard_normal(shape).astype(np.float32).astype(np.float64)

    def f(inp):
        zz = np.einsum("oc,bchw->bohw", w, inp)
        mu, var = zz.mean((0, 2, 3), keepdims=True), zz.var((0, 2, 3), keepdims=True)
        return (zz - mu) / np.sqrt(var + 1e-5), zz.var((0, 2, 3))

    f1, var1 = f(x)
    f2, _ = f(x + 0.01 * eps)
    want = math.log(np.linalg.norm((f1 - f2).reshape(16, -1), axis=1).mean()) + 0.5 * math.log(var1.mean())
    assert zen_score(net, net, shape, seed=5) == pytest.approx(want, abs=2e-3)


CODES = ["1222233333000000333300000055550000000000007777000000", "1558511131112131312111212121215121315151312111212161",
         "1422433313332300322200000022420000000000001424447400"]


def test_tool_shards_resume_and_refuses_other_settings(tiny_fmnist, tmp_path, capsys):
    archs = tmp_path / "codes.txt"
    archs.write_text("\n".join(CODES) + "\n")
    base = [str(archs), "--data_dir", str(tiny_fmnist), "--batch-size", "8", "--width-divisor", "8"]
    assert tool.main([*base, "--out", str(tmp_path / "one")]) == 0
    assert tool.main([*base, "--out", str(tmp_path / "sh"), "--shard", "1/2"]) == 0
    assert not (tmp_path / "sh" / "zen.json").exists()  # shard 0 still missing
    assert tool.main([*base, "--out", str(tmp_path / "sh"), "--shard", "0/2"]) == 0
    for name in ("zen", "naswot", "synflow", "grad_norm", "snip", "macs", "params", "depth"):
        one = json.loads((tmp_path / "one" / f"{name}.json").read_text())
        sh = json.loads((tmp_path / "sh" / f"{name}.json").read_text())
        assert one == sh and [v["arch"] for v in one.values()] == CODES
        assert all(math.isfinite(v["acc"]) for v in one.values())
    recs = [json.loads(line) for j in sorted((tmp_path / "sh").glob("journal*.jsonl"))
            for line in j.read_text().splitlines()[1:]]
    assert len(recs) == 3 and all(r["end"] > r["s"] > 0 and r["pid"] > 0 for r in recs)  # zc_run.py's wall time
    depth = json.loads((tmp_path / "one" / "depth.json").read_text())  # residual blocks, read off the code
    assert [v["acc"] for v in depth.values()] == [float(sum(parse_code(c).depths)) for c in CODES]
    rows = list(csv.DictReader((tmp_path / "sh" / "table.csv").open()))  # the same values as a CSV table
    assert [r["arch"] for r in rows] == CODES
    zen = json.loads((tmp_path / "one" / "zen.json").read_text())
    assert [float(r["zen"]) for r in rows] == [v["acc"] for v in zen.values()]
    capsys.readouterr()
    assert tool.main([*base, "--out", str(tmp_path / "one")]) == 0  # everything done: nothing rescored
    assert "0 to score" in capsys.readouterr().err
    assert tool.main([*base[:-1], "4", "--out", str(tmp_path / "one")]) == 2  # another network's journal
    assert "another checkpoint or other settings" in capsys.readouterr().err
    # the files name their network: a ground truth of another width divisor is refused
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({f"a{i}": {"arch": c, "acc": 90.0 + i} for i, c in enumerate(CODES)}))
    (tmp_path / "gt.protocol.json").write_text(json.dumps({"dataset": "fmnist", "width_divisor": 4, "input_size": 28}))
    assert rank_corr.main([str(tmp_path / "one" / "zen.json"), str(gt)]) == 2
    assert "width_divisor 8 vs 4" in capsys.readouterr().err
