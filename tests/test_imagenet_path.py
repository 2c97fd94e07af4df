"""The ImageNet path a GPU user runs, on the CPU: a generated JPEG folder (with grayscale, CMYK, a PNG named
.JPEG and a truncated file) through train_supernet.sh with configs/imagenet_8gpu.yaml on 2 processes,
killed and resumed to the uninterrupted run's weights, then scoring, standalone training and export.
Widths / 8 and a few images keep it to a minute or two; everything else is the user's configuration."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import ROOT, run_and_kill, run_env
from supernet.resnet import SuperNet
from supernet.supernet_train import net_config
from supernet.synthetic import make_image_folder

CODE = "1348311131310000332323230014143424241434543757770000"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("imnet"), classes=2, train_per_class=8, val_per_class=3)


def overrides(images: Path, out: Path) -> list[str]:
    o = [f"data.image_dir={images}", "model.width_divisor=8", "data.val_images=null", "data.num_workers=2",
         "train.batch_size=4", "train.epochs=2", "train.save_every_steps=1", "train.log_every=1",
         "train.eval_codes=0", "train.calib_batches=1", f"train.output_dir={out}"]
    return [x for item in o for x in ("-o", item)]


def weights(path: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def test_imagenet_supernet_on_two_processes_resumes_exactly_then_scores_trains_and_exports(images, tmp_path):
    sh = ["bash", str(ROOT / "train_supernet.sh"), str(ROOT / "configs" / "imagenet_8gpu.yaml")]
    env = {**run_env(), "NPROC": "2"}
    ref = subprocess.run(sh + overrides(images, tmp_path / "ref"), env=env, capture_output=True, text=True,
                         timeout=900)
    logs = "".join(p.read_text() for p in (tmp_path / "ref" / "launch").glob("workerlog.*"))
    assert ref.returncode == 0, (ref.stderr + logs)[-3000:]
    assert "replaced 1 undecodable images" in logs  # the truncated file; grayscale, CMYK and PNG decode
    assert "PLEASE USE OMP_NUM_THREADS" not in ref.stderr + logs

    out = tmp_path / "killed"
    run_and_kill(sh + overrides(images, out), (out / "checkpoints" / "ckpt_s000000002.json").exists, env=env)
    assert not (out / "supernet.pdparams").exists()
    res = subprocess.run(sh + overrides(images, out) + ["--resume"], env=env, capture_output=True, text=True,
                         timeout=900)
    logs = "".join(p.read_text() for p in (out / "launch").glob("workerlog.*"))
    assert res.returncode == 0, (res.stderr + logs)[-3000:]
    assert "resuming from" in logs
    a, b = weights(tmp_path / "ref" / "supernet.pdparams"), weights(out / "supernet.pdparams")
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst == 0.0, f"resumed ImageNet supernet differs from the uninterrupted one by up to {worst}"

    # scoring on its validation folder (list-file layout: the same files through val_list.txt)
    archs = tmp_path / "archs.json"
    archs.write_text(json.dumps({"arch1": {"arch": CODE}, "arch2": {"arch": "1222233333000000333300000055550000000000007777000000"}}))
    (images / "val_list.txt").write_text("".join(f"val/{d.name}/{f.name} {c}\n" for c, d in
                                                 enumerate(sorted((images / "val").iterdir())) for f in sorted(d.iterdir())))
    try:
        r = subprocess.run([sys.executable, str(ROOT / "eval_subnets.py"), "--checkpoint",
                            str(tmp_path / "ref" / "supernet.pdparams"), "--archs", str(archs), "--out",
                            str(tmp_path / "eval"), "--calib-batches", "1", "--calib-batch-size", "4"],
                           env=run_env(), capture_output=True, text=True, timeout=900)
    finally:
        (images / "val_list.txt").unlink()
    assert r.returncode == 0, r.stderr[-3000:]
    sub = json.loads((tmp_path / "eval" / "submission.json").read_text())
    assert sorted(sub) == ["arch1", "arch2"] and all(np.isfinite(v["acc"]) for v in sub.values())

    # standalone training on the same folder, into a ground-truth file
    r = subprocess.run([sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", CODE, "--image_dir", str(images),
                        "--width_divisor", "8", "--batch_size", "4", "--max_epoch", "1", "--num_workers", "2",
                        "--output_dir", str(tmp_path / "pt"), "--gt_file", str(tmp_path / "gt.json")],
                       env=run_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "gt.json").read_text())

    # export: the standalone model gives the supernet's logits for the code (BN kept: --calib-batches 0)
    prefix = tmp_path / "exp" / "m"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "export_subnet.py"), "--checkpoint",
                        str(tmp_path / "ref" / "supernet.pdparams"), "--code", CODE, "--out", str(prefix),
                        "--calib-batches", "0"], env=run_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = net_config({"dataset": "imagenet", "width_divisor": 8})
    sn = SuperNet(cfg)
    sn.set_state_dict(paddle.load(str(tmp_path / "ref" / "supernet.pdparams")))
    sn.eval()
    sn.set_active(CODE)
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype("float32"))
    want = sn(x).numpy()
    got = paddle.jit.load(str(prefix))(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
