"""The installation checks every command makes before it starts, and the CPU thread count per process."""
from __future__ import annotations

import supernet
from supernet import cli


def _main(argv=None) -> int:
    return 0


def test_both_paddle_builds_installed_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_installed", lambda dist: True)
    assert cli.entry_point(_main)([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "both paddlepaddle and paddlepaddle-gpu" in err[0] and "requirements-common.txt" in err[0]


def test_a_gpu_with_the_cpu_build_is_refused_unless_hidden(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_installed", lambda dist: dist == "paddlepaddle")
    monkeypatch.setattr(cli, "_paddle_has_cuda", lambda: False)
    monkeypatch.setattr(cli, "_nvidia_visible", lambda: True)
    assert cli.entry_point(_main)([]) == 2
    assert "an NVIDIA GPU is visible but the installed Paddle is the CPU build" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_nvidia_visible", lambda: False)
    assert cli.entry_point(_main)([]) == 0


def test_cuda_visible_devices_empty_hides_the_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not cli._nvidia_visible()


def test_this_machine_passes_the_check():
    assert cli.install_problem() is None


def test_threads_per_process():
    cores = supernet.cpu_threads({"OMP_NUM_THREADS": "0"})  # not a count: all cores
    assert supernet.cpu_threads({}) == cores
    assert supernet.cpu_threads({"OMP_NUM_THREADS": "3"}) == 3
    # under the launcher, Paddle's own 1 is not the user's choice: the cores are shared among the processes
    assert supernet.cpu_threads({"OMP_NUM_THREADS": "1", "PADDLE_LOCAL_SIZE": "2"}) == max(1, cores // 2)
    assert supernet.cpu_threads({"OMP_NUM_THREADS": "4", "PADDLE_LOCAL_SIZE": "2"}) == 4
