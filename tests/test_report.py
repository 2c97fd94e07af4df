"""tools/report.py: the picture and summary of a large scoring run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from supernet import archfile
from supernet.space import FMNIST28, OFFICIAL_SPACE, count_cost, iter_sample

ROOT = Path(__file__).resolve().parents[1]


def test_report_marks_gt_codes_and_lists_top(tmp_path):
    archs = {f"arch{i + 1}": a for i, a in enumerate(iter_sample(OFFICIAL_SPACE, 300, seed=4))}
    macs = {k: count_cost(a, FMNIST28).macs for k, a in archs.items()}
    sub = tmp_path / "submission.json"
    archfile.write_official(sub, archs, {k: 80 + m / 1e7 for k, m in macs.items()})  # score rises with MACs
    (tmp_path / "submission.meta.json").write_text(json.dumps(
        {"rank_by": "loss", "network": {"dataset": "fmnist", "width_divisor": 4, "input_size": 28}}))
    gt_keys = list(archs)[:12]
    gt = tmp_path / "gt.json"
    archfile.write_official(gt, {k: archs[k] for k in gt_keys}, {k: -macs[k] / 1e6 for k in gt_keys})  # reversed
    out = tmp_path / "rep"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), str(sub), "--gt", str(gt), "--top", "5",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "rep.json").read_text())
    assert res["codes"] == 300 and res["score_vs_macs"]["kendall"] > 0.99
    g = res["ground_truth"]
    assert g["codes_in_run"] == 12 and g["prediction"]["kendall"] < -0.99 and g["macs"]["kendall"] < -0.99
    best = max(archs, key=lambda k: macs[k])
    assert [t["rank"] for t in res["top"]] == [1, 2, 3, 4, 5] and res["top"][0]["key"] == best
    assert res["score_label"].startswith("supernet score")
    assert (tmp_path / "rep.png").stat().st_size > 10_000
    # a bare file needs the network said; a wrong one is refused
    (tmp_path / "submission.meta.json").unlink()
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), str(sub), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--net" in r.stderr and "Traceback" not in r.stderr
    # a zero-cost predictor's file: the folder's zero_cost.meta.json gives the network, the axis says what it is
    zc = tmp_path / "zc"
    zc.mkdir()
    archfile.write_official(zc / "params.json", archs, {k: float(count_cost(a, FMNIST28).params) for k, a in archs.items()})
    (zc / "zero_cost.meta.json").write_text(json.dumps(
        {"network": {"dataset": "fmnist", "width_divisor": 8, "input_size": 28}, "codes": 300}))
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), str(zc / "params.json"), "--out",
                        str(zc / "rep")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((zc / "rep.json").read_text())
    assert res["network"]["width_divisor"] == 8 and res["score_label"] == "params (zero-cost score)"


def test_report_against_zero_cost_table(tmp_path):
    """--zero-cost: the run's Kendall against each predictor of tools/zero_cost.py's table, matched by code
    (the committed form, xz-compressed parts, reads the same); a folder without a table is one-line error."""
    import lzma
    archs = {f"arch{i + 1}": a for i, a in enumerate(iter_sample(OFFICIAL_SPACE, 60, seed=5))}
    macs = {k: count_cost(a, FMNIST28).macs for k, a in archs.items()}
    sub = tmp_path / "submission.json"
    archfile.write_official(sub, archs, {k: m / 1e6 for k, m in macs.items()})
    (tmp_path / "submission.meta.json").write_text(json.dumps(
        {"rank_by": "loss", "network": {"dataset": "fmnist", "width_divisor": 8, "input_size": 28}}))
    rows = ["key,arch,macs,neg,partial"] + [
        f"other{i},{a.code},{macs[k]},{-macs[k]},{'' if i % 2 else macs[k]}" for i, (k, a) in enumerate(archs.items())]
    zc = tmp_path / "zc"
    zc.mkdir()
    (zc / "table.csv").write_text("\n".join(rows) + "\n")
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "table.part1.csv.xz").write_bytes(lzma.compress(("\n".join(rows[:31]) + "\n").encode()))
    (packed / "table.part2.csv.xz").write_bytes(lzma.compress(("\n".join(rows[:1] + rows[31:]) + "\n").encode()))
    got = []
    for table in (zc, packed):
        out = tmp_path / f"rep_{table.name}"
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), str(sub), "--zero-cost", str(table),
                            "--out", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        vs = json.loads(Path(str(out) + ".json").read_text())["vs_zero_cost"]
        assert vs["macs"]["kendall"] > 0.99 and vs["neg"]["kendall"] < -0.99
        assert vs["macs"]["codes"] == 60 and vs["partial"]["codes"] == 30  # empty cells left out
        assert "prediction vs zero-cost predictors" in r.stdout
        got.append(vs)
    assert got[0] == got[1]
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), str(sub), "--zero-cost", str(tmp_path / "rep_zc.json"),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "--zero-cost" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), str(sub), "--zero-cost", str(tmp_path),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "no table.csv" in r.stderr and "Traceback" not in r.stderr
