"""tools/node_check.py, as a user runs it on a new node (here: the CPU path on 2 processes)."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, run_env


def test_node_check_runs_the_whole_path_and_reports_every_check(tmp_path):
    out = tmp_path / "nc"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "node_check.py"), "--out", str(out)], env=run_env(),
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    rows = {row["check"]: row for row in json.loads((out / "node_check.json").read_text())["rows"]}
    assert all(row["ok"] for row in rows.values()), rows
    assert {"Paddle build", "shared memory", "data loader", "sandwich, 1 device", "sandwich, 2 devices",
            "scoring 20 codes", "export one code"} <= set(rows)
    assert "node ready" in r.stdout
    assert not (out / "images").exists()  # generated data removed without --keep
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "node_check.py"), "--out", str(tmp_path / "mine")],
                       env=run_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and (tmp_path / "mine" / "notes.txt").exists()
