"""The README's main command, end to end at toy size."""
import json
import subprocess
import sys

from conftest import ROOT, real_fmnist, run_env


def test_run_proxy_end_to_end(tmp_path):
    import shutil

    from supernet.groundtruth import DEV_GT, protocol_path

    # a copy of the repo's proxy ground truth (the default): a campaign may be growing the original meanwhile
    dev_gt = tmp_path / "gt.json"
    shutil.copy(DEV_GT, dev_gt)
    shutil.copy(protocol_path(DEV_GT), protocol_path(dev_gt))
    real_fmnist()
    out = tmp_path / "proxy"
    cmd = [sys.executable, str(ROOT / "run_proxy.py"), "-o", "data.train_images=256", "-o", "train.epochs=1",
           "-o", "train.batch_size=64", "--val-images", "100", "--calib-batches", "1", "--gt", str(dev_gt),
           "--out", str(out), "--full-train-images", "512"]
    r = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    # the default recipe: the full network trained standalone first, then the supernet started from it and
    # distilled from it
    saved = (out / "supernet" / "supernet.yaml").read_text()
    assert str(out / "full_model" / "model.pdparams") in saved and "teacher: " + str(out / "full_model") in saved
    for name in ("full_model/model.pdparams", "supernet/supernet.pdparams", "eval/submission.json", "rank_corr.json",
                 "scatter.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "rank_corr.json").read_text())
    assert report["n"] == len(json.loads(dev_gt.read_text()))
    assert "scatter plot" in r.stdout and "submission" in r.stdout
    # the floor is the best zero-cost predictor on the same codes, and the last lines say where MACs stands
    assert {"macs", "params", "zen", "naswot", "synflow", "grad_norm", "snip"} <= set(report["floor"])
    assert report["vs_zero_cost"]["against"] == max(report["floor"], key=lambda k: report["floor"][k]["kendall"])
    assert "kendall minus macs's" in r.stdout or report["vs_zero_cost"]["against"] == "macs"
    # a second run reuses what is done: no retraining, no rescoring
    r2 = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=900)
    assert r2.returncode == 0, r2.stderr[-3000:]
    n = len(json.loads(dev_gt.read_text()))
    assert "already holds this run's final weights" in r2.stderr and f"{n} already done" in r2.stderr
    assert "already holds the trained full network" in r2.stderr
