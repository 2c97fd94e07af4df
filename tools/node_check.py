"""Is this node ready? One command that runs the project's GPU path end to end on a small generated data set.

  python tools/node_check.py                     # everything, on a generated JPEG folder
  python tools/node_check.py --val-images 10000 --out output/node_check --keep

Checks, in order, each through the project's own commands (so what passes here passes for real runs):
the Paddle build against the devices (one build installed, CUDA where a GPU is visible), /dev/shm against
what the loader's workers need, the data loader's decode rate, a few sandwich steps of
configs/imagenet_8gpu.yaml (AMP where there is a GPU) on one device and on every device under
paddle.distributed.launch, scoring 20 codes, and exporting one. Prints a table and writes
``<out>/node_check.json``; exits 1 when any check fails. On a CPU-only machine it runs the same path on
2 processes at widths / 8 (a few minutes on 2 cores); on GPUs at full width.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401
import paddle  # noqa: E402

from supernet.cli import ArgumentParser, entry_point, install_problem, positive_int  # noqa: E402
from supernet.data import DatasetBatches, ImageDataset, imagenet_samples  # noqa: E402
from supernet.runtime import atomic_write_json, setup_logging  # noqa: E402
from supernet.space import OFFICIAL_SPACE, iter_sample  # noqa: E402
from supernet.synthetic import make_image_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("node_check")
CONFIG = ROOT / "configs" / "imagenet_8gpu.yaml"
BATCH_PER_DEVICE = {"gpu": 128, "cpu": 4}
PREFETCH = 2  # batches in flight per DataLoader worker (Paddle's default prefetch factor)


def gpu_count() -> int:
    return paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0


def run(cmd: list[str], log_file: Path, env: dict | None = None, timeout: float = 1800) -> tuple[bool, float, str]:
    """Run ``cmd``; (success, seconds, last lines of its output)."""
    t = time.time()
    with open(log_file, "w") as f:
        try:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env or os.environ.copy(), timeout=timeout)
            ok = r.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
    tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-5:])
    return ok, time.time() - t, tail


def last_train_record(log_jsonl: Path) -> dict:
    """The last training record of a run's log.jsonl (images/s of all processes together, peak memory)."""
    if not log_jsonl.is_file():
        return {}
    recs = [json.loads(line) for line in log_jsonl.read_text().splitlines() if '"kind": "train"' in line]
    return recs[-1] if recs else {}


def shm_check(workers: int, batch: int, processes: int) -> tuple[bool, str]:
    """/dev/shm against the uint8 batches the loaders keep in flight (workers x prefetch per process)."""
    need = processes * workers * PREFETCH * batch * 3 * 224 * 224
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return False, "no /dev/shm (the loader's workers need it; run with num_workers 0 or mount one)"
    ok = free >= need
    msg = f"{free / 2**30:.1f} GiB free, {need / 2**30:.2f} GiB needed ({processes} processes x {workers} workers x " \
          f"{PREFETCH} batches of {batch})"
    return ok, msg + ("" if ok else "; in a container start it with --shm-size (e.g. --shm-size=16g)")


def loader_rate(images: Path, workers: int, batch: int) -> float:
    """Decode + augment + collate images/s of the training loader with ``workers`` workers."""
    ds = ImageDataset(imagenet_samples(images, "train"), train=True, size=224)
    loader = DatasetBatches(ds, batch, train=True, num_workers=workers)
    t, n = time.time(), 0
    for _, y in loader.epoch(0):
        n += len(y)
    return n / max(1e-9, time.time() - t)


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="output/node_check", help="work folder (generated images, runs, node_check.json)")
    p.add_argument("--val-images", type=positive_int, default=10000,
                   help="validation size the subnets/hour figure is projected to (default 10000)")
    p.add_argument("--steps", type=positive_int, default=4, help="sandwich steps per training check")
    p.add_argument("--keep", action="store_true", help="keep the generated images and runs")
    a = p.parse_args(argv)
    setup_logging()
    out = Path(a.out)
    if out.exists() and any(out.iterdir()) and not (out / "node_check.json").exists():
        print(f"error: --out {out} holds files that no node check wrote; choose another folder", file=sys.stderr)
        return 2
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    gpus = gpu_count()
    kind = "gpu" if gpus else "cpu"
    devices = gpus or 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(8, cores // devices)) if gpus else 1
    batch = BATCH_PER_DEVICE[kind]
    divisor = 1 if gpus else 8
    rows: list[dict] = []

    def row(check: str, ok: bool, value: str) -> None:
        rows.append({"check": check, "ok": ok, "value": value})
        log.info("%-26s %s  %s", check, "ok  " if ok else "FAIL", value)

    problem = install_problem()
    row("Paddle build", problem is None,
        f"Paddle {paddle.__version__}, CUDA {paddle.version.cuda() if gpus else 'none'}, {gpus} GPU(s)"
        + (f": {problem}" if problem else ""))
    ok, msg = shm_check(workers, batch, devices)
    row("shared memory", ok, msg)

    images = make_image_folder(out / "images", classes=4, train_per_class=max(8, batch * devices * a.steps // 4),
                               val_per_class=8, size=(500, 375))
    rate = loader_rate(images, workers, batch)
    row("data loader", rate > 0, f"{rate:.0f} images/s with {workers} worker(s) per process "
                                 f"({rate / workers:.0f} per worker; decode + RandomResizedCrop + flip, uint8)")

    env = os.environ.copy()
    common = ["-o", f"data.image_dir={images}", "-o", f"model.width_divisor={divisor}", "-o", "data.val_images=null",
              "-o", f"data.num_workers={workers}", "-o", "train.epochs=1", "-o", "train.log_every=1",
              "-o", "train.eval_codes=0", "-o", "train.calib_batches=1", "-o", "train.save_every_steps=0"]
    one = out / "train_one"
    ok, secs, tail = run([sys.executable, str(ROOT / "train_supernet.py"), "-c", str(CONFIG), *common,
                          "-o", f"train.batch_size={batch}", "-o", f"train.output_dir={one}", "--max_steps",
                          str(a.steps)], out / "train_one.log", env)
    rec = last_train_record(one / "log.jsonl")
    ips, peak = rec.get("img_per_s"), rec.get("max_mem_gib")
    row("sandwich, 1 device", ok and ips is not None,
        f"{ips} images/s (AMP {'on' if gpus else 'off: CPU'})" if ok else f"failed: {tail}")

    every = out / "train_all"
    ok, secs, tail = run(["bash", str(ROOT / "train_supernet.sh"), str(CONFIG), *common,
                          "-o", f"train.batch_size={batch * devices}", "-o", f"train.output_dir={every}"],
                         out / "train_all.log", {**env, "NPROC": str(devices)})
    ips_all = last_train_record(every / "log.jsonl").get("img_per_s")
    row(f"sandwich, {devices} devices", ok and ips_all is not None,
        f"{ips_all} images/s in all ({ips_all / devices:.1f} per device)" if ok and ips_all else f"failed: {tail}")

    archs = out / "codes20.json"
    archs.write_text(json.dumps({f"arch{i + 1}": {"arch": s.code} for i, s in enumerate(iter_sample(OFFICIAL_SPACE, 20,
                                                                                                     seed=0))}))
    ckpt = every / "supernet.pdparams"
    ok, secs, tail = run([sys.executable, str(ROOT / "eval_subnets.py"), "--checkpoint", str(ckpt), "--archs", str(archs),
                          "--out", str(out / "eval"), "--calib-batches", "1", "--calib-batch-size", "8"],
                         out / "eval.log", env)
    per_code = []
    for j in (out / "eval").glob("journal*.jsonl"):
        per_code += [json.loads(line)["s"] for line in j.read_text().splitlines()[1:] if line.strip()]
    val = len(imagenet_samples(images, "val"))
    if ok and per_code:
        s = sorted(per_code)[len(per_code) // 2] * a.val_images / val  # evaluation scales with the images
        row("scoring 20 codes", True, f"{sorted(per_code)[len(per_code) // 2]:.2f} s per code at {val} images: "
                                      f"~{3600 / s:.0f} subnets/hour per process at {a.val_images} images")
    else:
        row("scoring 20 codes", False, f"failed: {tail}")
    ok, secs, tail = run([sys.executable, str(ROOT / "tools" / "export_subnet.py"), "--checkpoint", str(ckpt),
                          "--code", json.loads(archs.read_text())["arch1"]["arch"], "--out", str(out / "export" / "arch1"),
                          "--calib-batches", "1", "--calib-batch-size", "8"], out / "export.log", env)
    row("export one code", ok, str(out / "export" / "arch1.pdparams") if ok else f"failed: {tail}")
    row("peak device memory", True, f"{peak:.2f} GiB (1-device check, batch {batch})" if peak else "n/a on the CPU")

    width = max(len(r["check"]) for r in rows)
    print(f"\n{'check':<{width}}  result  value")
    for r in rows:
        print(f"{r['check']:<{width}}  {'ok    ' if r['ok'] else 'FAIL  '}  {r['value']}")
    atomic_write_json(out / "node_check.json", {"devices": devices, "kind": kind, "paddle": paddle.__version__,
                                                "rows": rows})
    if not a.keep:
        for d in ("images", "train_one", "train_all", "eval", "export"):
            shutil.rmtree(out / d, ignore_errors=True)
    failed = [r["check"] for r in rows if not r["ok"]]
    if failed:
        print(f"node check FAILED: {', '.join(failed)} (logs in {out})", file=sys.stderr)
        return 1
    print(f"node ready ({out / 'node_check.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
