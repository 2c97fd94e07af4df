"""tools/search.py: the best codes of a scored file under MACs/params budgets, exactly."""
from __future__ import annotations

import json
import sys

from conftest import ROOT
from supernet.space import IMAGENET, OFFICIAL_SPACE, count_cost, iter_sample, parse_code

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


def test_evolution_makes_only_valid_new_codes_within_budget():
    import random

    from supernet.evolution import crossover, mutate, propose
    from supernet.space import FULL_SPACE

    rng = random.Random(0)
    parents = list(iter_sample(OFFICIAL_SPACE, 10, seed=1))
    for _ in range(200):
        child = mutate(OFFICIAL_SPACE, crossover(OFFICIAL_SPACE, rng.choice(parents), rng.choice(parents), rng), rng, 0.5)
        assert OFFICIAL_SPACE.contains(child) and child.is_tied
    scored = {a.code: float(i) for i, a in enumerate(parents)}
    archs = {a.code: a for a in parents}
    budget = sorted(count_cost(a, IMAGENET).macs for a in parents)[5]
    fits = lambda a: count_cost(a, IMAGENET).macs <= budget  # noqa: E731
    gen = propose(FULL_SPACE, 3, scored, archs, fits, population=12, parents=4, seed=0)
    assert len(gen) == 12 and len({a.code for a in gen}) == 12 and not {a.code for a in gen} & set(scored)
    assert all(fits(a) and FULL_SPACE.contains(a) for a in gen)
    from collections import Counter
    assert max(Counter(a.depths for a in gen).values()) <= 3  # the diversity guard: a quarter of 12
    assert [a.code for a in gen] == [a.code for a in propose(FULL_SPACE, 3, scored, archs, fits, 12, 4, 0)]


def test_evolutionary_search_with_a_supernet_resumes_from_its_journals(tmp_path, tiny_fmnist):
    import paddle

    from supernet.config import load_config
    from supernet.resnet import SuperNet
    from supernet.space import FMNIST28
    from supernet.supernet_train import save_supernet

    cfg = load_config(ROOT / "configs" / "fmnist_sandwich.yaml", [f"data.data_dir={tiny_fmnist}"])
    paddle.seed(0)
    save_supernet(SuperNet(FMNIST28), cfg, tmp_path / "supernet.pdparams")
    args = ["--supernet", str(tmp_path / "supernet.pdparams"), "--max-macs", "3G", "--generations", "2",
            "--population", "4", "--parents", "2", "--val-images", "40", "--calib-batches", "1",
            "--calib-batch-size", "16", "--work", str(tmp_path / "evo"), "--out", str(tmp_path / "picks.json"),
            "--top", "3"]
    assert search.main(args) == 0
    journal = (tmp_path / "evo" / "journal.r0.jsonl").read_text().splitlines()
    assert len(journal) == 1 + 8  # header + two generations of four
    res = json.loads((tmp_path / "picks.json").read_text())
    assert len(res["top"]) == 3 and res["top"][0]["score"] >= res["top"][-1]["score"]
    assert all(count_cost(parse_code(r["arch"]), IMAGENET).macs <= 3e9 for r in res["top"])
    assert search.main(args) == 0  # resumed: everything scored already, nothing scored again
    assert (tmp_path / "evo" / "journal.r0.jsonl").read_text().splitlines() == journal
    assert json.loads((tmp_path / "picks.json").read_text())["top"] == res["top"]


def test_usefulness_report_pairs_seeds(tmp_path):
    """benchmarks/search_usefulness.py report: the pick minus each alternative, paired by seed, only on the seeds
    both have."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import search_usefulness

    a, b, c = (x.code for x in iter_sample(OFFICIAL_SPACE, 3, seed=9))
    plan = {"u1": {"arch": a, "budget_q": 0.3, "budget_macs": 1, "role": "search", "macs": 1},
            "u2": {"arch": b, "budget_q": 0.3, "budget_macs": 1, "role": "most_macs", "macs": 1},
            "u3": {"arch": c, "budget_q": 0.3, "budget_macs": 1, "role": "random", "macs": 1}}
    gt = {"u1": {"arch": a, "acc": 85.0, "per_seed": {"1": 85.0, "2": 86.0, "3": 84.0}},
          "u2": {"arch": b, "acc": 84.0, "per_seed": {"1": 84.0, "2": 84.0, "3": 84.0}},
          "u3": {"arch": c, "acc": 80.0, "per_seed": {"2": 80.0}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    out = tmp_path / "r.json"
    assert search_usefulness.main(["report", "--plan", str(tmp_path / "plan.json"), "--gt", str(tmp_path / "gt.json"),
                                   "--out", str(out)]) == 0
    d = {x["versus"]: x for x in json.loads(out.read_text())["search_minus"]}
    assert d["most_macs"]["seeds"] == 3 and abs(d["most_macs"]["search_minus"] - 1.0) < 1e-9
    assert abs(d["most_macs"]["ci95_half"] - 4.30 * 1.0 / 3 ** 0.5) < 1e-9  # differences 1, 2, 0: sd 1
    assert d["random"]["seeds"] == 1 and d["random"]["search_minus"] == 6.0 and d["random"]["ci95_half"] is None
