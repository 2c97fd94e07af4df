"""Results are bound to what produced them: nothing is reused, recorded or deleted silently."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import ROOT, real_fmnist, run_env
from supernet import checkpoint
from supernet.runtime import atomic_write_json

SMALL = "1222233333000000333300000055550000000000007777000000"


def test_checkpoint_rotation_keeps_the_new_one_and_at_least_one(tmp_path):
    d = tmp_path / "ck"
    for step in (100, 200):  # another run's, with higher steps
        checkpoint.save(d, {"w": np.zeros(2, np.float32)}, step, {"fingerprint": "old"}, keep=3)
    new = checkpoint.save(d, {"w": np.ones(2, np.float32)}, 5, {"fingerprint": "new"}, keep=1)
    assert new.is_file(), "the checkpoint just written was deleted"
    assert [p.name for p in checkpoint.list_checkpoints(d)] == [new.name]
    kept = checkpoint.save(tmp_path / "k0", {"w": np.zeros(1, np.float32)}, 1, {}, keep=0)
    assert kept.is_file(), "keep=0 kept no checkpoint at all"


def test_fresh_start_into_a_run_folder_is_refused(tmp_path):
    checkpoint.save(tmp_path, {"w": np.zeros(1, np.float32)}, 7, {"fingerprint": "aaa"})
    with pytest.raises(checkpoint.CheckpointError, match="--resume"):
        checkpoint.check_start(tmp_path, "aaa", resume=False)
    with pytest.raises(checkpoint.CheckpointError, match="another run"):
        checkpoint.check_start(tmp_path, "bbb", resume=True)
    checkpoint.check_start(tmp_path, "aaa", resume=True)
    checkpoint.check_start(tmp_path / "empty", "aaa", resume=False)


def test_atomic_write_keeps_the_file_mode(tmp_path):
    shared = tmp_path / "gt.json"
    shared.write_text("{}")
    os.chmod(shared, 0o664)
    atomic_write_json(shared, {"a": 1})
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "new.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_diverged_run_is_not_ground_truth(tmp_path):
    real_fmnist()
    gt = tmp_path / "gt.json"
    r = subprocess.run([sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", SMALL, "--output_dir",
                        str(tmp_path / "run"), "--train_images", "320", "--val_images", "100", "--batch_size", "32",
                        "--lr", "1e8", "--warmup", "0", "--max_epoch", "1", "--eval_every", "0", "--gt_file", str(gt)],
                       env=run_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "diverged" in r.stderr
    assert not gt.exists() and not (tmp_path / "run" / "result.json").exists()


def test_committed_results_record_no_absolute_paths():
    for f in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        text = f.read_text()
        for anchor in (str(ROOT), str(ROOT.parent)):
            assert f'"{anchor}/' not in text, f"{f.name} records an absolute path under {anchor}"
