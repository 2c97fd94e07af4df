"""pretrain.py end to end on a few hundred real Fashion-MNIST images (subprocesses, as users run it)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import ROOT, real_fmnist, run_and_kill, run_env

SMALL = "1222233333000000333300000055550000000000007777000000"
TINY = ["--train_images", "640", "--val_images", "500", "--batch_size", "32", "--lr", "0.4", "--warmup", "0.3",
        "--eval_every", "0"]


def pretrain(out: Path, *extra: str, launch: bool = False, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable]
    if launch:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(out / "launch")]
    cmd += [str(ROOT / "pretrain.py"), "run", "--arch", SMALL, "--output_dir", str(out), *TINY, *extra]
    return subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=600, **kw)


def test_pretrain_learns_and_writes_gt(tmp_path):
    real_fmnist()
    gt = tmp_path / "gt.json"
    r = pretrain(tmp_path / "run", "--max_epoch", "3", "--gt_file", str(gt), "--gt_key", "arch_small")
    assert r.returncode == 0, r.stderr[-3000:]
    acc = json.loads((tmp_path / "run" / "result.json").read_text())["acc"]
    assert acc > 30.0, f"top-1 {acc}% is not clearly above chance (10%)"
    rec = json.loads(gt.read_text())["arch_small"]
    assert rec["arch"] == SMALL and rec["acc"] == pytest.approx(acc, abs=1e-3) and rec["per_seed"] == {"0": rec["acc"]}


def test_pretrain_under_distributed_launch(tmp_path):
    real_fmnist()
    r = pretrain(tmp_path / "run", "--max_epoch", "3", launch=True)
    logs = "".join(p.read_text() for p in (tmp_path / "run" / "launch").glob("workerlog.*"))
    assert r.returncode == 0, logs[-3000:]
    assert "2 process(es)" in logs
    acc = json.loads((tmp_path / "run" / "result.json").read_text())["acc"]
    assert acc > 30.0


def _weights(path: Path) -> dict:
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def test_resume_after_kill_gives_same_weights(tmp_path):
    real_fmnist()
    args = ["--max_epoch", "3", "--save_every_steps", "7"]
    ref = pretrain(tmp_path / "ref", *args)
    assert ref.returncode == 0, ref.stderr[-3000:]

    out = tmp_path / "killed"
    cmd = [sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", SMALL, "--output_dir", str(out), *TINY, *args]
    # kill hard right after the second mid-epoch checkpoint (step 14 of 60) is complete
    run_and_kill(cmd, (out / "checkpoints" / "ckpt_s000000014.json").exists)
    assert not (out / "result.json").exists()
    # a torn newer checkpoint must be ignored: corrupt the newest file on purpose
    newest = sorted((out / "checkpoints").glob("*.pdckpt"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])

    res = pretrain(out, *args, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "corrupt" in res.stderr and "resuming from" in res.stderr
    a, b = _weights(tmp_path / "ref" / "model.pdparams"), _weights(out / "model.pdparams")
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst == 0.0, f"resumed weights differ from the uninterrupted run by up to {worst}"


def test_bad_code_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", "12345"], env=run_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "wrong length 5" in r.stderr and "Traceback" not in r.stderr


def test_missing_image_dir_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", SMALL, "--image_dir",
                        str(tmp_path / "nope")], env=run_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_checkpoints_of_an_earlier_fingerprint_form_still_resume(tmp_path):
    """A run identity that changed form (the process count left it) accepts its earlier checkpoints, and
    only those."""
    import pytest

    from supernet import checkpoint

    checkpoint.save(tmp_path, {"w": 1}, 5, {"epoch": 0, "fingerprint": "old-form"})
    with pytest.raises(checkpoint.CheckpointError, match="another run"):
        checkpoint.load_latest(tmp_path, "new-form")
    state, meta = checkpoint.load_latest(tmp_path, "new-form", also=("old-form",))
    assert meta["step"] == 5 and state["w"] == 1
    checkpoint.check_start(tmp_path, "new-form", resume=True, also=("old-form",))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.check_start(tmp_path, "new-form", resume=True)
