"""Outputs never replace inputs, runs never share a folder, diverged runs save nothing, the machine's
refusals and signals end in one line, and the project's JSON is strict."""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import ROOT, run_env
from supernet import data as data_mod
from supernet.archfile import ArchFileError
from supernet.cli import entry_point
from supernet.config import load_config
from supernet.groundtruth import merge_record, protocol_path
from supernet.metrics import correlations
from supernet.outputs import FolderLock, OutputError, overwrite_problem
from supernet.resnet import ResNet48
from supernet.space import FMNIST28, parse_code
from supernet.zero_cost import ZeroCostSettings, gaussian_init, score_all, zen_score

import train_supernet  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
import rank_corr  # noqa: E402

CODE = "1222233333000000333300000055550000000000007777000000"
METRICS = {"top1": 80.0, "ce": 0.5, "train_loss": 0.6}
PROTO = {"dataset": "fmnist", "width_divisor": 8, "input_size": 28, "max_epoch": 2, "warmup": 0.5, "lr": 0.05,
         "batch_size": 256, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "label_smoothing": 0.0,
         "train_images": None, "val_images": None, "init": None}


def test_an_output_through_a_link_or_an_added_suffix_is_an_input(tmp_path):
    (tmp_path / "gt.json").write_text("{}")
    os.symlink(tmp_path / "gt.json", tmp_path / "link.json")
    assert "would overwrite the input" in overwrite_problem([tmp_path / "link.json"], [tmp_path / "gt.json"], "--out")
    assert "would overwrite the input" in overwrite_problem([str(tmp_path / "gt") + ".json"], [tmp_path / "link.json"],
                                                            "--out")
    assert overwrite_problem([tmp_path / "new.json"], [tmp_path / "gt.json"], "--out") is None


def test_a_folder_is_held_by_one_run_and_a_dead_runs_lock_is_taken_over(tmp_path, caplog):
    with FolderLock(tmp_path / "out", "train.r0"):
        with pytest.raises(OutputError, match=f"in use by another run \\(pid {os.getpid()} on "):
            FolderLock(tmp_path / "out", "train.r0").acquire()
        FolderLock(tmp_path / "out", "train.r1").acquire().release()  # another rank's lock is its own
    FolderLock(tmp_path / "out", "train.r0").acquire().release()
    # a lock file left by a killed process (its record there, no flock held): taken over, with a note
    (tmp_path / "out" / ".train.r0.lock").write_text('{"pid": 999999, "host": "gone", "since": 0}\n')
    with caplog.at_level(logging.INFO):
        FolderLock(tmp_path / "out", "train.r0").acquire().release()
    assert "taking over the lock" in caplog.text and "pid 999999" in caplog.text


def test_a_second_supernet_run_into_a_held_folder_is_refused(tmp_path, capsys, tiny_fmnist):
    out = tmp_path / "sn"
    with FolderLock(out, "train.r0"):
        rc = train_supernet.main(["-c", str(ROOT / "configs" / "fmnist_quick.yaml"), "-o", f"train.output_dir={out}",
                                  "-o", f"data.data_dir={tiny_fmnist}"])
    assert rc == 2 and "in use by another run" in capsys.readouterr().err
    assert not (out / "config.yaml").exists()


def test_a_diverging_supernet_stops_and_saves_nothing(tmp_path, capsys, tiny_fmnist):
    out = tmp_path / "sn"
    rc = train_supernet.main(["-c", str(ROOT / "configs" / "fmnist_sandwich.yaml"), "--device", "cpu",
                              "-o", f"data.data_dir={tiny_fmnist}", "-o", "data.train_images=96",
                              "-o", "data.val_images=40", "-o", "train.batch_size=16", "-o", "train.epochs=2",
                              "-o", "train.lr=1e+30", "-o", "train.warmup_epochs=0", "-o", "train.eval_codes=0",
                              "-o", "train.save_every_steps=2", "-o", "train.log_every=3",
                              "-o", f"train.output_dir={out}"])
    assert rc == 1 and "diverged" in capsys.readouterr().err
    assert not (out / "supernet.pdparams").exists()
    for ck in (out / "checkpoints").glob("*.pdckpt"):  # any checkpoint kept was written before the loss broke
        state = paddle.load(str(ck))["model"]
        assert all(np.isfinite(v.numpy()).all() for v in state.values()), f"{ck.name} holds non-finite weights"


def test_yaml_numbers_in_e_notation_without_a_dot():
    cfg = load_config(ROOT / "configs" / "fmnist_quick.yaml", ["train.lr=1e-3", "train.weight_decay=5E-5"])
    assert cfg["train"]["lr"] == 0.001 and cfg["train"]["weight_decay"] == 5e-5


def test_gt_file_through_a_link_gets_the_record_and_keeps_the_link(tmp_path):
    real = tmp_path / "real" / "gt.json"
    real.parent.mkdir()
    link = tmp_path / "gt.json"
    os.symlink(real, link)
    merge_record(link, "arch1", parse_code(CODE), 1, METRICS, PROTO)
    assert link.is_symlink() and json.loads(real.read_text())["arch1"]["per_seed"] == {"1": 80.0}
    assert protocol_path(real).is_file()


def test_protocol_is_bound_under_the_merge_lock(tmp_path):
    gt = tmp_path / "gt.json"
    merge_record(gt, "arch1", parse_code(CODE), 1, METRICS, PROTO)
    with pytest.raises(ArchFileError, match="another protocol"):
        merge_record(gt, "arch1", parse_code(CODE), 2, METRICS, {**PROTO, "max_epoch": 4})
    assert list(json.loads(gt.read_text())["arch1"]["per_seed"]) == ["1"]


def test_machine_refusals_and_signals_end_in_one_line(capsys):
    @entry_point
    def full(argv=None):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/journal.jsonl")

    @entry_point
    def interrupted(argv=None):
        raise KeyboardInterrupt

    assert full([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "journal.jsonl" in err[0]
    assert interrupted([]) == 130
    assert "stopped by SIGINT" in capsys.readouterr().err


def test_sigterm_ends_a_command_without_paddles_banner(tmp_path):
    script = tmp_path / "busy.py"
    script.write_text(
        "import sys, time\nsys.path.insert(0, %r)\nimport supernet, paddle\nfrom supernet.cli import entry_point\n"
        "@entry_point\ndef main(argv=None):\n    x = paddle.randn([256, 256])\n    print('ready', flush=True)\n"
        "    while True:\n        paddle.matmul(x, x)\n"
        "sys.exit(main())\n" % str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script)], env=run_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "FatalError" not in err and "Traceback" not in err and "stopped by SIGTERM" in err


def test_undefined_correlations_are_null_with_a_reason_in_strict_json(tmp_path, capsys):
    codes = ["1222233333000000333300000055550000000000007777000000", "1348311131310000332323230014143424241434543757770000",
             "1222233333000000333300000055550000000000006777000000"]
    (tmp_path / "const.json").write_text(json.dumps({f"a{i}": {"arch": c, "acc": 5.0} for i, c in enumerate(codes)}))
    (tmp_path / "gt.json").write_text(json.dumps({f"a{i}": {"arch": c, "acc": float(i)} for i, c in enumerate(codes)}))
    assert rank_corr.main([str(tmp_path / "const.json"), str(tmp_path / "gt.json"), "--json"]) == 0

    def no_constants(name):
        raise AssertionError(f"a bare {name} token in the JSON")

    res = json.loads(capsys.readouterr().out, parse_constant=no_constants)
    assert res["kendall"] is None and res["undefined"] == "the predictions are constant"


def test_pearson_of_a_predictor_spanning_magnitudes_is_on_its_logarithm():
    gt = [1.0, 2.0, 3.0, 4.0, 5.0]
    r = correlations([1e-10, 1e-6, 1e-2, 1e2, 1e6], gt)
    assert r["pearson_of"] == "ln(prediction)" and r["pearson"] == pytest.approx(1.0, abs=0.01)
    assert correlations([1.0, 2.0, 3.0, 4.0, 5.0], gt)["pearson_of"] == "prediction"


def test_synflow_does_not_depend_on_which_predictors_run_with_it():
    cfg = FMNIST28
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype("float32")
    y = np.arange(8, dtype="int64") % 10
    build = lambda: ResNet48.from_code(parse_code(CODE), cfg)  # noqa: E731 - has BN layers
    s = ZeroCostSettings(8, 1, 0)
    alone = score_all(build, lambda m, t: m.forward_features(t), [(x, y)], [8, 1, 28, 28], s, ["synflow"])
    mixed = score_all(build, lambda m, t: m.forward_features(t), [(x, y)], [8, 1, 28, 28], s,
                      ["synflow", "grad_norm", "naswot"])
    assert mixed["synflow"] == pytest.approx(alone["synflow"], rel=1e-9)


def test_zen_score_removes_residual_links():
    """Without residual links, the projection shortcuts' weights cannot matter; with them, they do."""
    def score(shortcut_scale: float, residual: bool) -> float:
        paddle.seed(0)
        m = ResNet48.from_code(parse_code(CODE), FMNIST28)
        gaussian_init(m, 0)
        with paddle.no_grad():
            for name, p in m.named_parameters():
                if ".downsample.0." in name:
                    p.set_value(p * shortcut_scale)
        return zen_score(m, m.forward_features, [8, 1, 28, 28], 3, residual=residual)

    assert score(1.0, False) == pytest.approx(score(5.0, False), rel=1e-6)
    assert score(1.0, True) != pytest.approx(score(5.0, True), rel=1e-3)
    m = ResNet48.from_code(parse_code(CODE), FMNIST28)
    zen_score(m, m.forward_features, [4, 1, 28, 28], 3)
    assert all(b.residual for b in m.sublayers() if hasattr(b, "residual")), "links not restored after Zen-Score"


def test_an_unwritable_download_cache_is_one_clear_error(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.write_text("a file, not a folder")
    monkeypatch.setattr(data_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(data_mod.DataError, match="RESNET48_NAS_CACHE"):
        data_mod.fetch_fmnist(cache)


def test_processes_started_together_fetch_the_data_once(tmp_path, monkeypatch, tiny_fmnist):
    calls = []
    target = tmp_path / "fashion-mnist" / data_mod.FMNIST_SUBDIR

    made = tiny_fmnist

    def slow_fetch(cache_dir, tgt):
        calls.append(1)
        time.sleep(0.3)
        tiny = made
        target.mkdir(parents=True)
        for f in tiny.iterdir():
            os.replace(f, target / f.name)
        return target

    monkeypatch.setattr(data_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(data_mod, "_fetch_locked", slow_fetch)
    results = []
    threads = [threading.Thread(target=lambda: results.append(data_mod.fetch_fmnist(tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [target] * 3
