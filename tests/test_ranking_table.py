"""benchmarks/ranking_table.py: the markdown table BENCHMARKS.md quotes, from ranking.py's JSON."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import ranking_table  # noqa: E402


def _row(variant: str, rank_by: str, gm: str, tau: float, **extra) -> dict:
    return {"variant": variant, "calib_K": 4, "rank_by": rank_by, "gt_metric": gm, "n": 96, "kendall": tau,
            "best_zc": "depth", "tau_minus_zc": tau - 0.47, "ci95": "[-0.10, +0.02]", "minus_macs": tau - 0.44,
            "ci95_macs": "[-0.05, +0.05]", "tau_same_depth": 0.09, "train_min": 11.16, **extra}


def _result(rows: list[dict], entries: int = 96) -> dict:
    floor = {"macs": {"kendall": 0.438}, "depth": {"kendall": 0.473}}
    return {"rows": rows, "gt_file": "gt.json", "gt_entries": entries, "args": {"exclude": None},
            "details": {"default_k4_loss": {"gt_metric": "top1", "floor": floor},
                        "default_k4_loss_gtce": {"gt_metric": "ce", "floor": {"macs": {"kendall": 0.47},
                                                                              "depth": {"kendall": 0.51}}}}}


def test_table_lines_per_recipe_loss_first_and_later_files_replace_rows():
    first = _result([_row("default", "top1", "top1", 0.386), _row("default", "loss", "top1", 0.426),
                     _row("default", "loss", "ce", 0.459), _row("default", "loss", "top1", 0.9) | {"calib_K": 1},
                     _row("finetune", "loss", "top1", 0.30, minus_default=-0.126, ci95_default="[-0.2, -0.05]")])
    second = _result([_row("finetune", "loss", "top1", 0.460, minus_default=0.034, ci95_default="[-0.02, +0.09]")])
    lines = ranking_table.table([first, second]).splitlines()
    body = [ln for ln in lines[2:] if ln.startswith("| ")]
    assert [ln.split(" | ")[:2] for ln in body] == [["| default", "loss"], ["| finetune", "loss"],
                                                    ["| default", "top1"]]
    assert "| 0.426 |" in body[0] and "| 0.459 |" in body[0] and "0.9" not in body[0]  # K = 4 rows only
    assert "| 0.460 |" in body[1] and "+0.034 [-0.02, +0.09]" in body[1]  # the later file's row
    assert lines[-1].startswith("Floor on the same codes (GT top1 / ce): depth 0.473 / 0.510, macs 0.438 / 0.470")
    picked = [ln for ln in ranking_table.table([first, second], only=["finetune", "default"]).splitlines()[2:]
              if ln.startswith("| ")]
    assert [ln.split(" | ")[:2] for ln in picked] == [["| finetune", "loss"], ["| default", "loss"],
                                                      ["| default", "top1"]]
    with pytest.raises(ValueError, match=r"no rows for \['fewshot'\]"):
        ranking_table.table([first], only=["default", "fewshot"])


def test_results_of_different_ground_truths_are_refused(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_result([_row("default", "loss", "top1", 0.4)], 96)))
    b.write_text(json.dumps(_result([_row("default", "loss", "top1", 0.4)], 48)))
    assert ranking_table.main([str(a), str(b)]) == 2
    assert "different ground-truth files" in capsys.readouterr().err
    held_out = _result([_row("default", "loss", "top1", 0.4)], 96) | {"args": {"exclude": "first46.json"}}
    b.write_text(json.dumps(held_out))
    assert ranking_table.main([str(a), str(b)]) == 2
    assert "different ground-truth files" in capsys.readouterr().err
    (tmp_path / "c.json").write_text("{not json")
    assert ranking_table.main([str(tmp_path / "c.json")]) == 2
    assert "c.json: not a readable ranking.py result" in capsys.readouterr().err


def test_results_of_a_ground_truth_that_changed_under_its_name_are_refused():
    a, b = _result([_row("default", "loss", "top1", 0.4)]), _result([_row("finetune", "loss", "top1", 0.45)])
    a["gt_sha256"], b["gt_sha256"] = "a" * 64, "b" * 64
    with pytest.raises(ValueError, match="different contents"):
        ranking_table.table([a, b])
    b["gt_sha256"] = "a" * 64
    assert "finetune" in ranking_table.table([a, b])
