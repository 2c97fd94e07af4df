"""Latency tables: every layer a code can contain is in the table, predictions are sums, tables are bound
to their setting, and search respects a latency budget."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT
from supernet.latency import all_layers, layers_of, predict, table_mismatch
from supernet.space import FMNIST28, FULL_SPACE, IMAGENET, OFFICIAL_SPACE, iter_sample

sys.path.insert(0, str(ROOT / "tools"))
import latency  # noqa: E402
import search  # noqa: E402


@pytest.mark.parametrize("space", [FULL_SPACE, OFFICIAL_SPACE], ids=["full", "official45k"])
@pytest.mark.parametrize("cfg", [IMAGENET, FMNIST28], ids=["imagenet", "proxy"])
def test_the_table_covers_every_layer_of_the_space(space, cfg):
    have = all_layers(space, cfg)
    for arch in iter_sample(space, 300, seed=8):
        missing = set(layers_of(arch, cfg)[0]) - have
        assert not missing, f"{arch.code}: {missing}"


def test_prediction_is_the_sum_of_layers_and_fitted_costs():
    arch = next(iter_sample(OFFICIAL_SPACE, 1, seed=3))
    ls, n = layers_of(arch, FMNIST28)
    table = {"layers": {repr(x): 0.001 for x in all_layers(OFFICIAL_SPACE, FMNIST28)}, "base_s": 0.01,
             "per_block_s": 0.002, "batch": 8, "input_size": 28, "width_divisor": 8, "stem": FMNIST28.stem}
    assert predict(table, arch, FMNIST28) == pytest.approx(0.01 + 0.002 * n + 0.001 * len(ls))
    assert table_mismatch(table, FMNIST28, 8) is None
    assert "batch 8 vs 16" in table_mismatch(table, FMNIST28, 16)


def test_build_predict_and_search_within_a_latency_budget(tmp_path, capsys):
    out = tmp_path / "table.json"
    assert latency.main(["build", "--net", "fmnist28", "--width-divisor", "8", "--batch", "2", "--space",
                         "official45k", "--fit-subnets", "3", "--repeats", "1", "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    codes = [a.code for a in iter_sample(OFFICIAL_SPACE, 30, seed=5)]
    assert latency.main(["predict", "--table", str(out), codes[0]]) == 0
    assert codes[0] in capsys.readouterr().out
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({f"a{i}": {"arch": c, "acc": float(i)} for i, c in enumerate(codes)}))
    from supernet.space import parse_code
    ms = sorted(predict(table, parse_code(c), FMNIST28) * 1000 for c in codes)
    limit = ms[len(ms) // 2]
    picks = tmp_path / "picks.json"
    assert search.main([str(scores), "--max-latency-ms", str(limit), "--latency-table", str(out), "--out",
                        str(picks)]) == 0
    res = json.loads(picks.read_text())
    assert res["codes_within_budget"] == sum(m <= limit for m in ms)
    assert all(r["latency_ms"] <= limit for r in res["top"])
    assert search.main([str(scores), "--max-latency-ms", "5"]) == 2  # a budget without a way to measure it
    assert "--latency-table" in capsys.readouterr().err
