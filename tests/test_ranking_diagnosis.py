"""benchmarks/ranking_diagnosis.py: the per-gap and per-stage picture of ranking.py results."""
from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import ranking_diagnosis  # noqa: E402


def _diag(conc: list[float], depth: list[float], width: list[float]) -> dict:
    gaps = [{"gap": g, "pairs": 10, "concordant": c} for g, c in zip(("1", "2", "3+"), conc)]
    return {"concordance_by_depth_gap": gaps, "tau_stage_depth": depth, "tau_stage_width": width, "tau_depth": 0.7}


def _result(variant: str, conc: list[float], sha: str = "abc") -> dict:
    diag = {"prediction": _diag(conc, [0.2] * 4, [-0.2] * 4),
            "ground_truth": {"tau_stage_depth": [0.25] * 4, "tau_stage_width": [0.0] * 4, "tau_depth": 0.6},
            "depth": _diag([0.63, 0.73, 0.91], [0.3] * 4, [-0.1] * 4)}
    return {"gt_sha256": sha, "args": {"exclude": None}, "rows": [],
            "details": {f"{variant}_k4_loss": {"diagnosis": diag}}}


def test_rows_in_order_depth_first_truth_last_and_a_later_file_wins():
    rows = ranking_diagnosis.collect([_result("a", [0.5, 0.6, 0.8]), _result("b", [0.6, 0.7, 0.9]),
                                      _result("a", [0.55, 0.65, 0.85])], ["b", "a"])
    assert list(rows) == ["depth", "b", "a", "ground truth"]
    assert rows["a"]["concordant"] == [0.55, 0.65, 0.85] and rows["depth"]["concordant"] == [0.63, 0.73, 0.91]
    assert rows["ground truth"]["concordant"] == [None, None, None]
    lines = ranking_diagnosis.table(rows).splitlines()
    assert lines[2].startswith("| depth | 0.630 / 0.730 / 0.910 | +0.30 +0.30 +0.30 +0.30 | -0.10")
    assert lines[-1].startswith("| ground truth | — / — / — |")


def test_main_writes_picture_and_numbers_and_refuses_bad_input(tmp_path, capsys):
    a, b, other = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "other.json"
    a.write_text(json.dumps(_result("a", [0.5, 0.6, 0.8])))
    b.write_text(json.dumps(_result("b", [0.6, 0.7, 0.9])))
    other.write_text(json.dumps(_result("b", [0.6, 0.7, 0.9], sha="def")))
    old = _result("a", [0.5, 0.6, 0.8])
    del old["details"]["a_k4_loss"]["diagnosis"]["depth"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "list.json").write_text("[1, 2]")
    out = tmp_path / "pic" / "diag.png"
    assert ranking_diagnosis.main([str(a), str(b), "--recipes", "a,b", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert list(json.loads(out.with_suffix(".json").read_text())["rows"]) == ["depth", "a", "b", "ground truth"]
    capsys.readouterr()
    cases = [([str(a), str(other), "--recipes", "a,b"], "different contents"),
             ([str(a), "--recipes", "a,c"], "no diagnosis for c"),
             ([str(tmp_path / "old.json"), "--recipes", "a"], "lacks 'depth'"),
             ([str(tmp_path / "list.json"), "--recipes", "a"], "list.json: not a ranking.py result"),
             ([str(tmp_path / "missing.json"), "--recipes", "a"], "missing.json"),
             ([str(a), "--recipes", "a", "--out", str(tmp_path / "a.png")], "would overwrite the input"),
             ([str(a), "--recipes", "a", "--out", str(tmp_path / "a.txt")], "must name a .png")]
    for argv, says in cases:
        if "--out" not in argv:
            argv = [*argv, "--out", str(tmp_path / "x.png")]
        assert ranking_diagnosis.main(argv) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1 and "Traceback" not in err
