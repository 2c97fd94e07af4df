"""benchmarks/ranking.py's recipes: every variant is a valid config that differs from the default's."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, real_fmnist, run_env

sys.path.insert(0, str(ROOT / "benchmarks"))

import ranking  # noqa: E402
from supernet.archfile import read_scores  # noqa: E402
from supernet.config import load_config  # noqa: E402
from supernet.metrics import rank_blend  # noqa: E402
from supernet.space import parse_code  # noqa: E402

BUDGET = ["data.train_images=10000", "train.epochs=6", "train.eval_codes=0"]


def _config(name: str) -> dict:
    fields = ranking.budget_fields(6, Path("full/model.pdparams"))
    config = ROOT / "configs" / ranking.BASE_CONFIG.get(name, "fmnist_sandwich.yaml")
    return load_config(config, BUDGET + [ranking.fill(o, fields) for o in ranking.VARIANTS[name]])


@pytest.mark.parametrize("name", sorted(ranking.VARIANTS))
def test_variant_is_a_valid_config_that_changes_training(name):
    cfg = _config(name)  # unknown keys and bad values are refused by load_config
    unfilled = [v for sec in cfg.values() if isinstance(sec, dict) for v in sec.values()
                if isinstance(v, str) and re.search(r"\{[a-z_]+\}", v)]
    assert not unfilled, f"placeholders left: {unfilled}"
    if name == "default":
        assert ranking.VARIANTS[name] == []
    else:
        assert cfg != _config("default"), f"{name} trains exactly like the default"


def test_long_variant_is_the_default_on_all_images():
    long, default = _config("long"), _config("default")
    assert long["data"]["train_images"] is None and default["data"]["train_images"] == 10000
    long["data"]["train_images"] = 10000
    assert long == default


def test_half_variants_are_the_default_at_half_the_epochs():
    half, default, seed1 = _config("half"), _config("default"), _config("half_seed1")
    assert half["train"]["epochs"] == 3 and seed1["train"]["seed"] == 1
    half["train"]["epochs"] = 6
    assert half == default


def test_every_ensemble_is_made_of_variants():
    for name, members in ranking.ENSEMBLES.items():
        assert name not in ranking.VARIANTS and len(members) >= 2 and set(members) <= set(ranking.VARIANTS)


def _ranking(tmp_path: Path, variants: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ranking.py"), "--train-images", "256",
                           "--epochs", "2", "--val-images", "200", "--variants", variants, "--calib", "4",
                           "--gt", str(tmp_path / "gt.json"), "--work", str(tmp_path / "work"), "--out",
                           str(tmp_path / "r.json"), *extra], env=run_env(), capture_output=True, text=True,
                          timeout=900)


def test_ensemble_is_the_rank_mean_of_its_members_scores(tmp_path):
    """End to end on 6 codes of the project's ground truth: two supernets (seeds 0 and 1), then their ensemble."""
    real_fmnist()
    gt = json.loads((ROOT / "benchmarks" / "gt" / "d8e2.json").read_text())
    (tmp_path / "gt.json").write_text(json.dumps({k: gt[k] for k in list(gt)[:6]}))
    shutil.copyfile(ROOT / "benchmarks" / "gt" / "d8e2.protocol.json", tmp_path / "gt.protocol.json")
    early = _ranking(tmp_path, "default,ens_seed2,seed1")  # refused before anything runs
    assert early.returncode == 2 and "ensemble ens_seed2 needs its members ['seed1'] listed before it" in early.stderr
    assert not (tmp_path / "work").exists()
    early = _ranking(tmp_path, "default", "--blend-with", "params,width")
    assert early.returncode == 2 and "unknown predictor(s) ['width']" in early.stderr
    assert not (tmp_path / "work").exists()
    r = _ranking(tmp_path, "default,seed1,ens_seed2", "--blend-with", "params,depth")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["complete"] and res["details"]["ens_seed2_k4_loss"]["members"] == ["default", "seed1"]
    for rank_by in ("top1", "loss"):
        parts = [read_scores(tmp_path / "work" / m / "score_k4" / f"submission_{rank_by}.json")
                 for m in ("default", "seed1")]
        assert parts[0] != parts[1], "two seeds gave the same scores"
        ens = read_scores(tmp_path / "work" / "ens_seed2" / "score_k4" / f"submission_{rank_by}.json")
        codes = list(parts[0])
        want = rank_blend([[p[c] for c in codes] for p in parts])
        assert [ens[c] for c in codes] == pytest.approx(want)
    rows = {(row["variant"], row["rank_by"]): row for row in res["rows"] if row.get("calib_K") == 4}
    assert rows[("ens_seed2", "loss")]["train_min"] == pytest.approx(
        rows[("default", "loss")]["train_min"] + rows[("seed1", "loss")]["train_min"])
    assert "ci95_default" in rows[("ens_seed2", "loss")]  # compared with the default, paired over codes
    depth = read_scores(tmp_path / "work" / "zero_cost" / "depth.json")  # blended with each prior, by rank
    assert [depth[c] for c in codes] == [float(parse_code(c).depth) for c in codes]
    for prior in ("params", "depth"):
        assert ("default+" + prior, "loss") in rows and ("ens_seed2+" + prior, "loss") in rows
    mixed = read_scores(tmp_path / "work" / "default" / "score_k4" / "submission_loss+depth.json")
    plain = read_scores(tmp_path / "work" / "default" / "score_k4" / "submission_loss.json")
    assert [mixed[c] for c in codes] == pytest.approx(rank_blend([[plain[c] for c in codes], [depth[c] for c in codes]]))
    assert -1 <= rows[("ens_seed2", "loss")]["tau_same_depth"] <= 1  # over the pairs of codes with equal depth
