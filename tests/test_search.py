"""tools/search.py: the best codes of a scored file under MACs/params budgets, exactly."""
from __future__ import annotations

import json
import sys

from conftest import ROOT
from supernet.space import IMAGENET, OFFICIAL_SPACE, count_cost, iter_sample

sys.path.insert(0, str(ROOT / "tools"))
import search  # noqa: E402


def test_scan_is_exact_under_budgets(tmp_path, capsys):
    archs = list(iter_sample(OFFICIAL_SPACE, 60, seed=4))
    scores = {f"arch{i}": {"arch": a.code, "acc": float((i * 37) % 60)} for i, a in enumerate(archs)}
    f = tmp_path / "scores.json"
    f.write_text(json.dumps(scores))
    costs = {a.code: count_cost(a, IMAGENET) for a in archs}
    macs = sorted(c.macs for c in costs.values())[30]
    params = sorted(c.params for c in costs.values())[40]
    out = tmp_path / "picks.json"
    assert search.main([str(f), "--max-macs", str(macs), "--max-params", str(params), "--top", "5",
                        "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    fits = [v for v in scores.values() if costs[v["arch"]].macs <= macs and costs[v["arch"]].params <= params]
    want = sorted(fits, key=lambda v: -v["acc"])[:5]
    assert [r["arch"] for r in res["top"]] == [v["arch"] for v in want]
    assert res["codes_within_budget"] == len(fits)
    assert res["top"][0]["arch"] in res["export"]
    assert search.amount("2.5G") == 2.5e9 and search.amount("300m") == 3e8


def test_nothing_fits_and_output_over_input_are_refused(tmp_path, capsys):
    a = next(iter_sample(OFFICIAL_SPACE, 1, seed=4))
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"arch1": {"arch": a.code, "acc": 1.0}}))
    assert search.main([str(f), "--max-macs", "1K"]) == 2
    assert "no code" in capsys.readouterr().err
    assert search.main([str(f), "--out", str(f)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err


def test_pareto_front_by_hand():
    import numpy as np
    import report

    cost = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 3.0])
    score = np.array([9.0, 1.0, 5.0, 4.0, 3.0, 6.0])
    # by cost: 1 (1.0) -> 3 (4.0) -> 5 (6.0, beats index 2 at equal cost) -> 0 (9.0); index 4 is beaten
    assert report.pareto_front(cost, score) == [1, 3, 5, 0]
